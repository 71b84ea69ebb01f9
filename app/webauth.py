"""The web server's optional bearer token (CLOGS_WEB_TOKEN): when set, every page -- the dashboard,
its API, /health, /stats/, Faust's own /router and /table pages -- needs it.

Scripts send ``Authorization: Bearer <token>``.  A browser opens ``/?token=<token>`` once: the
token is then kept in an HttpOnly, SameSite=Strict cookie (``clogs_token``) and the address bar
loses it (a redirect), so the page's own requests carry it.  Workers send it to each other when
they gather ``/stats/``.  The web server binds to loopback by default (CLOGS_WEB_HOST); a worker
bound elsewhere without a token says so in its log at start.
"""
import hmac
import logging

from aiohttp import web as aioweb

log = logging.getLogger(__name__)
COOKIE = "clogs_token"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def auth_headers(token):
    """The header that carries the token, if there is one."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def token_middleware(token):
    """An aiohttp middleware that lets through only requests that carry ``token``."""
    def valid(candidate):
        return bool(candidate) and hmac.compare_digest(candidate.encode(), token.encode())

    @aioweb.middleware
    async def require_token(request, handler):
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and valid(header[7:].strip()):
            return await handler(request)
        if valid(request.cookies.get(COOKIE, "")):
            return await handler(request)
        if valid(request.query.get("token", "")):   # a browser's first visit: keep it in a cookie
            target = request.rel_url.with_query({k: v for k, v in request.query.items() if k != "token"})
            response = aioweb.HTTPFound("/" + str(target).lstrip("/"))   # never //other-host/
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
            raise response
        return aioweb.json_response({"error": "this clogs worker needs its token (CLOGS_WEB_TOKEN): send "
                                              "'Authorization: Bearer <token>', or open /?token=<token> once"},
                                    status=401, headers={"WWW-Authenticate": "Bearer"})

    return require_token


def application_options(token):
    """Faust's ``web_application_options``: the token middleware when a token is set."""
    return {"middlewares": [token_middleware(token)]} if token else {}


def warn_if_open(settings):
    if not settings.web_token and settings.web_host not in LOOPBACK:
        log.warning("the web server listens on %s:%s without a token: anyone who can reach it can read the "
                    "statistics and incidents and send feedback; set CLOGS_WEB_TOKEN", settings.web_host,
                    settings.web_port)
