# The pipeline image for the GCP nightly job (docs/gcp.md): Python, Java 17 for Spark, the package.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir -r requirements.lock \
    && pip install --no-cache-dir --no-deps . \
    && python -c "from memphis_incidents.execute import ensure_kernel; ensure_kernel()"
ENTRYPOINT ["python", "run_pipeline.py"]
