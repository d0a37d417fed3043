"""The integrator's faces: where requests come in (the WSGI application under gunicorn, the catalogue and the
published documents, the operator's command line). They hand every SOAP request to the stages (integrator/), and
nothing in the stages imports them."""
