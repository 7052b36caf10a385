"""The 422 handler answers 422 whatever the bad input holds."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from shared.http import install_error_handlers


class Body(BaseModel):
    value: float = Field(ge=0, le=1)


def test_an_integer_beyond_64_bits_is_a_422_echoed_as_text() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.put("/thing")
    def put(body: Body) -> dict[str, float]:
        return {"value": body.value}

    with TestClient(app) as client:
        huge = 10**30
        response = client.put("/thing", content=f'{{"value": {huge}}}', headers={"content-type": "application/json"})
        assert response.status_code == 422
        (error,) = response.json()["detail"]
        assert error["loc"] == ["body", "value"] and error["input"] == str(huge)
        assert client.put("/thing", json={"value": -2.0}).json()["detail"][0]["input"] == -2.0
