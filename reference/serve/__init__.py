"""Serving: the champion behind KServe's ModelServer, with prediction monitoring.

::

    mlops-lab serve                       # models:/flight-delay@champion on 127.0.0.1:8080
    mlops-lab predict --month 11 --rows 3 # a client request with real flights

Modules: ``schema`` (the request contract and its 4xx messages), ``tensors`` (the V2 body's
structure: JSON and binary tensors), ``predictor`` (the kserve.Model:
load / preprocess / predict / postprocess), ``telemetry`` (Prometheus metrics of the predictions),
``payload_log`` (what was asked and answered, for joining with late labels), ``server`` (the
process: KServe on loopback, guard middleware), ``client`` (start, wait, stop, request).
"""
