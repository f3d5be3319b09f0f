from openapi_spec_validator import validate

from gateway.openapi import merge


def service_doc(path: str, schema_name: str, schema: dict) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "x", "version": "1"},
        "paths": {
            path: {
                "get": {
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": f"#/components/schemas/{schema_name}"}
                                }
                            },
                        }
                    }
                }
            },
            "/health/live": {"get": {"responses": {"200": {"description": "ok"}}}},
            "/internal/v1/users": {"get": {"responses": {"200": {"description": "ok"}}}},
        },
        "components": {"schemas": {schema_name: schema}},
    }


def test_merged_document_is_valid_and_holds_every_public_path():
    merged = merge(
        {
            "contacts": service_doc("/api/v1/contacts", "Item", {"type": "object"}),
            "billing": service_doc("/api/v1/payments", "Item", {"type": "string"}),
        },
        unavailable=["chat"],
    )
    validate(merged)
    assert set(merged["paths"]) == {"/api/v1/contacts", "/api/v1/payments"}
    assert merged["paths"]["/api/v1/contacts"]["get"]["tags"] == ["contacts"]
    assert merged["info"]["x-unavailable-services"] == ["chat"]
    # two different schemas of one name are both kept, references rewritten
    schemas = merged["components"]["schemas"]
    assert schemas["Item"] == {"type": "string"} or schemas["Item"] == {"type": "object"}
    renamed = [name for name in schemas if name.endswith("_Item")]
    assert len(renamed) == 1
    service = renamed[0].split("_")[0]
    path = "/api/v1/contacts" if service == "contacts" else "/api/v1/payments"
    ref = merged["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    assert ref["schema"]["$ref"] == f"#/components/schemas/{renamed[0]}"


def test_public_routes_need_no_security():
    merged = merge({"projects": service_doc("/api/v1/portal/{link}", "S", {})}, unavailable=[])
    assert merged["paths"]["/api/v1/portal/{link}"]["get"]["security"] == []
    assert merged["security"] == [{"session": []}]
