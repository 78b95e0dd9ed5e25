FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ussd ./ussd
COPY menus ./menus
RUN pip install --no-cache-dir -e .
ENV USSD_MENUS_DIR=/app/menus
EXPOSE 8000
CMD ["ussd", "serve", "--host", "0.0.0.0", "--port", "8000"]
