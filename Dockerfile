# The function app on the official Azure Functions Python image (Functions host 4, Python 3.13:
# azure-functions 2.x and the app-pinned azure-functions-runtime from requirements.txt).
# Build: docker build -t kafka-adx-func .   Run: see docker-compose.yml and docs/function-app.md.
# LOCAL_SINK=true (the default, for docker-compose.yml's local mode: LOCAL_DB) adds DuckDB from
# requirements-cli.txt; build with --build-arg LOCAL_SINK=false for the deployed package alone.
FROM mcr.microsoft.com/azure-functions/python:4-python3.13

ARG LOCAL_SINK=true

ENV AzureWebJobsScriptRoot=/home/site/wwwroot \
    AzureFunctionsJobHost__Logging__Console__IsEnabled=true \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Dependencies first, so that code changes do not reinstall them.
COPY requirements.txt requirements-cli.txt /tmp/
RUN pip install --no-cache-dir -r /tmp/requirements.txt \
    && if [ "$LOCAL_SINK" = true ]; then pip install --no-cache-dir "$(grep '^duckdb' /tmp/requirements-cli.txt)"; fi

COPY function_app.py host.json ingestion.yaml requirements.txt /home/site/wwwroot/
COPY shared /home/site/wwwroot/shared
