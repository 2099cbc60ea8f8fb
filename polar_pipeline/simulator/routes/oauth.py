"""OAuth 2 authorization-code flow: ``/oauth2/authorization`` and ``/v2/oauth2/token``.

In production these are other hosts than the API, so they are counted in the stats but neither rate limited
nor subject to request faults; their errors are OAuth bodies (``{"error": ...}``), not AccessLink ones.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlencode

from polar_pipeline.simulator.accounts import DEFAULT_REDIRECT_URI, TOKEN_EXPIRES_IN
from polar_pipeline.simulator.asgi import Request, Response, json_response
from polar_pipeline.simulator.routes.common import Endpoint
from polar_pipeline.simulator.state import SimulatorState


class OAuthRoutes:
    def __init__(self, sim: SimulatorState) -> None:
        self.sim = sim

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("GET", "/oauth2/authorization", self.authorize),
            Endpoint("POST", "/v2/oauth2/token", self.token),
        ]

    def authorize(self, request: Request, params: dict[str, str]) -> Response:
        """Consent is implicit: a code for ``sim_user`` if given, else for the next user not yet authorized
        (``access_denied`` once every user is)."""
        config, accounts = self.sim.config, self.sim.accounts
        if request.query_value("response_type") != "code":
            return json_response(400, {"error": "unsupported_response_type"})
        if request.query_value("client_id") != config.client_id:
            return json_response(400, {"error": "invalid_client"})
        redirect_uri = request.query_value("redirect_uri")
        state = request.query_value("state")
        wanted = request.query_value("sim_user")
        if wanted is not None:
            account = accounts.accounts.get(int(wanted)) if wanted.isdigit() else None
            if account is None:
                return json_response(
                    400, {"error": "invalid_request", "error_description": "unknown sim_user"}
                )
        else:
            account = accounts.next_unauthorized()
        query: dict[str, str] = {}
        if account is None:
            query["error"] = "access_denied"
        else:
            query["code"] = accounts.issue_code(account, redirect_uri)
        if state is not None:
            query["state"] = state
        target = redirect_uri or DEFAULT_REDIRECT_URI
        location = f"{target}{'&' if '?' in target else '?'}{urlencode(query)}"
        return Response(302, headers=[("Location", location)])

    def token(self, request: Request, params: dict[str, str]) -> Response:
        config = self.sim.config
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            credentials = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            credentials = ""
        if scheme.lower() != "basic" or credentials != f"{config.client_id}:{config.client_secret}":
            return json_response(401, {"error": "invalid_client"})
        form = request.form()
        if form.get("grant_type") != "authorization_code":
            return json_response(400, {"error": "unsupported_grant_type"})
        code = form.get("code")
        if not code:
            return json_response(400, {"error": "invalid_request"})
        account = self.sim.accounts.redeem_code(code, form.get("redirect_uri"))
        if account is None:
            return json_response(400, {"error": "invalid_grant"})
        return json_response(
            200,
            {
                "access_token": account.token,
                "token_type": "bearer",
                "expires_in": TOKEN_EXPIRES_IN,
                "x_user_id": account.x_user_id,
            },
        )


def routes(sim: SimulatorState) -> list[Endpoint]:
    return OAuthRoutes(sim).endpoints()
