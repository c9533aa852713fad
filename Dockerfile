# The function app on the official Azure Functions Python image (Functions host 4, Python 3.13:
# azure-functions 2.x and the app-pinned azure-functions-runtime from requirements.txt).
# Build: docker build -t kafka-adx-func .   Run: see docker-compose.yml and docs/function-app.md.
FROM mcr.microsoft.com/azure-functions/python:4-python3.13

ENV AzureWebJobsScriptRoot=/home/site/wwwroot \
    AzureFunctionsJobHost__Logging__Console__IsEnabled=true \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Dependencies first, so that code changes do not reinstall them.
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt

COPY function_app.py host.json ingestion.yaml requirements.txt /home/site/wwwroot/
COPY shared /home/site/wwwroot/shared
