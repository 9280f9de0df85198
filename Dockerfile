FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY schemas ./schemas
COPY detectors ./detectors
COPY rules ./rules
COPY streams ./streams
RUN pip install --no-cache-dir .
RUN useradd --create-home spendfuse
USER spendfuse
ENV SPENDFUSE_DATA_DIR=/home/spendfuse/data SPENDFUSE_WEB_HOST=0.0.0.0
EXPOSE 6066
ENTRYPOINT ["spendfuse"]
CMD ["worker"]
