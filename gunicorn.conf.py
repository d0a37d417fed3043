"""gunicorn settings for the integrator; bind and workers come from the environment."""

import os

bind = os.environ.get("KRUISPUNT_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("KRUISPUNT_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("KRUISPUNT_THREADS", "8"))
timeout = int(os.environ.get("KRUISPUNT_WORKER_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Behind a load balancer: trust X-Forwarded-* only from the addresses named here.
forwarded_allow_ips = os.environ.get("KRUISPUNT_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("KRUISPUNT_ACCESS_LOG", "-") or None
max_requests = int(os.environ.get("KRUISPUNT_MAX_REQUESTS", "0"))
max_requests_jitter = 50
