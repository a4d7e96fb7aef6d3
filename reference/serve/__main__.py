"""`python -m reference.serve`: the model server process (see reference/serve/server.py)."""

import os

from reference.serve.server import main

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
raise SystemExit(main())
