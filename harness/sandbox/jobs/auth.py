"""Worker authentication: `Token <key>` as most worker versions send it, and `Api-Key <key>`, which one
version of the AMI Data Companion client sends (Antenna's processing-service keys)."""

from rest_framework.authentication import TokenAuthentication


class ApiKeyAuthentication(TokenAuthentication):
    keyword = "Api-Key"
