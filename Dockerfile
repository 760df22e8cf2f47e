FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SR_CORE_HOME=/data MPLBACKEND=Agg
WORKDIR /app
# libgomp1: OpenMP runtime for LightGBM (s2cloudless); fonts for readable exported frames
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
# Run-time pins only (no pytest, selenium, hypothesis or ruff: those are in requirements.txt, for development)
COPY requirements-app.txt .
RUN pip install --no-cache-dir -r requirements-app.txt
COPY . .
# the package itself, with the bundled weights as package data: `sr-core` on PATH
RUN pip install --no-cache-dir --no-deps .
VOLUME /data
EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health')"
CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501"]
