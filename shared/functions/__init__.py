"""The Azure Functions app's code (``function_app.py`` is only the wiring): ``settings`` (what the
app reads, and the trigger settings that decide which functions exist), ``invocation`` (one
trigger batch under the delivery contract), ``attempts`` (which delivery a batch is),
``worker`` (the process-wide pipeline), ``summary`` and ``telemetry`` (the log line and the
OpenTelemetry metrics of a batch)."""
