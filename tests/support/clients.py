"""The relying parties the tests use, written to a clients.yaml for each test session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from joserfc.jwk import ECKey

from idp.clients import hash_secret

PORTAL_SECRET = "portal-secret-0123456789-abcdefghijklmnop"
POST_SECRET = "post-secret-0123456789-abcdefghijklmnopqrs"
PARTNER_SECRET = "partner-secret-0123456789-abcdefghijklmno"
AGENCY_SECRET = "agency-secret-0123456789-abcdefghijklmnop"
RESOURCE_SECRET = "resource-secret-0123456789-abcdefghijklmn"

PORTAL_CALLBACK = "https://portal.example.vn/callback"
PARTNER_CALLBACK = "https://partner.example.vn/cb"
MOBILE_CALLBACK = "vn.gov.hue.citizen:/oauth/callback"


def jwt_client_key() -> ECKey:
    return ECKey.generate_key("P-256", private=True)


def test_clients(backchannel_base: str, jwt_key: ECKey) -> list[dict[str, Any]]:
    public_jwk = jwt_key.as_dict(private=False)
    public_jwk["kid"] = "jwt-client-1"
    return [
        {
            "client_id": "portal",
            "client_name": "Cổng Dịch vụ công tỉnh",
            "redirect_uris": [PORTAL_CALLBACK, "http://127.0.0.1:9/portal/callback"],
            "post_logout_redirect_uris": ["https://portal.example.vn/signed-out"],
            "client_secret_hash": hash_secret(PORTAL_SECRET),
            "scope": "openid profile email phone citizen organization offline_access",
            "backchannel_logout_uri": f"{backchannel_base}/portal",
            "first_party": True,
        },
        {
            "client_id": "portal-post",
            "client_name": "Cổng một cửa",
            "redirect_uris": ["https://onegate.example.vn/cb"],
            "token_endpoint_auth_method": "client_secret_post",
            "client_secret_hash": hash_secret(POST_SECRET),
            "scope": "openid profile",
            "id_token_signed_response_alg": "RS256",
            "backchannel_logout_uri": f"{backchannel_base}/portal-post",
            "first_party": True,
        },
        {
            "client_id": "partner",
            "client_name": "Ứng dụng đối tác",
            "redirect_uris": [PARTNER_CALLBACK],
            "post_logout_redirect_uris": ["https://partner.example.vn/bye"],
            "client_secret_hash": hash_secret(PARTNER_SECRET),
            "scope": "openid profile phone",
            "require_pkce": False,
        },
        {
            "client_id": "mobile",
            "client_name": "Ứng dụng công dân",
            "redirect_uris": [MOBILE_CALLBACK, "http://127.0.0.1/oauth/callback"],
            "token_endpoint_auth_method": "none",
            "scope": "openid profile phone offline_access",
            "first_party": True,
        },
        {
            "client_id": "strict-portal",
            "client_name": "Cổng yêu cầu mức 3",
            "redirect_uris": ["https://strict.example.vn/cb"],
            "client_secret_hash": hash_secret(PORTAL_SECRET),
            "scope": "openid profile",
            "require_acr": "LoA3",
            "first_party": True,
        },
        {
            "client_id": "agency-backend",
            "client_name": "Hệ thống một cửa điện tử",
            "grant_types": ["client_credentials"],
            "client_secret_hash": hash_secret(AGENCY_SECRET),
            "scope": "records.read records.write",
        },
        {
            "client_id": "resource-api",
            "client_name": "API dịch vụ",
            "grant_types": ["client_credentials"],
            "client_secret_hash": hash_secret(RESOURCE_SECRET),
            "scope": "records.read",
            "resource_server": True,
        },
        {
            "client_id": "jwt-client",
            "client_name": "Cổng dùng khóa riêng",
            "redirect_uris": ["https://jwt.example.vn/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [public_jwk]},
            "scope": "openid profile",
            "first_party": True,
        },
    ]


def write_clients_file(path: Path, clients: list[dict[str, Any]]) -> Path:
    path.write_text(
        yaml.safe_dump({"clients": clients}, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return path
