"""A venue's first login, as an operator and a developer do it against `make dev`.

Contacts and the gateway run as processes, the gateway in dev mode (its own key pair and
JWKS); `gala users add` creates the first ADMIN, `gala dev-token` mints their session
token, and the gateway lets them in.
"""

import os

import httpx

from gala.testing import free_port, gala_cli, service_process, unique_name


async def test_first_admin_logs_in_through_the_gateway_in_dev_mode(infra, tmp_path):
    contacts_port, gateway_port = free_port(), free_port()
    env = {
        **os.environ,
        "GALA_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "GALA_MONGO_URL": infra.mongo_url,
        "GALA_MONGO_DATABASE": unique_name("gala_e2e_login_"),
        "GALA_CONTACTS_PORT": str(contacts_port),
        "GALA_GATEWAY_PORT": str(gateway_port),
        "GALA_CONTACTS_URL": f"http://127.0.0.1:{contacts_port}",
        "GALA_AUTH_DEV_MODE": "true",
        "GALA_AUTH_DEV_KEY_DIR": str(tmp_path / "dev-auth"),
    }
    async with (
        service_process("contacts", env, contacts_port),
        service_process("gateway", env, gateway_port) as gw,
    ):
        created = await gala_cli(
            env,
            "users",
            "add",
            "--venue",
            "venue-1",
            "--email",
            "Owner@Example.com",
            "--role",
            "ADMIN",
            "--subject",
            "user_owner",
            "--name",
            "Owner",
        )
        assert '"role": "ADMIN"' in created
        token = await gala_cli(env, "dev-token", "--email", "owner@example.com")
        async with httpx.AsyncClient(base_url=gw) as client:
            me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text
            assert me.json()["email"] == "owner@example.com"
            assert me.json()["role"] == "ADMIN"
            refused = await client.get("/api/v1/users/me")
            assert refused.status_code == 401
