"""CRM webhooks to Sphere customer updates: receive -> verify -> normalize -> enqueue -> deliver -> record."""
