"""How every Kafka client of clogs connects: plain, TLS, SASL (PLAIN, SCRAM-SHA-256/512) or both.

One place for the worker (Faust's ``broker_credentials``), ``clogs ingest``, ``clogs topic``,
``clogs feedback``, the trainer and the model service, from the CLOGS_KAFKA_* settings:

    CLOGS_KAFKA_SECURITY_PROTOCOL  PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL
    CLOGS_KAFKA_SASL_MECHANISM     PLAIN, SCRAM-SHA-256 (default) or SCRAM-SHA-512
    CLOGS_KAFKA_USERNAME / CLOGS_KAFKA_PASSWORD
    CLOGS_KAFKA_CA_FILE            PEM file of the CA that signed the brokers' certificates
                                   (unset: the system's trusted CAs)
    CLOGS_KAFKA_CERT_FILE / CLOGS_KAFKA_KEY_FILE   a client certificate, when the brokers ask for one
    CLOGS_KAFKA_CHECK_HOSTNAME     1 (default): the certificate must name the host connected to

``diagnose(bootstrap)`` turns a failed connection to a broker that answers into one line naming
the setting to fix: it opens TLS itself to tell an untrusted certificate from refused credentials.
"""
import asyncio
import ssl

from app import settings

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def protocol():
    value = (settings.KAFKA_SECURITY_PROTOCOL or "PLAINTEXT").upper()
    if value not in PROTOCOLS:
        raise ValueError(f"CLOGS_KAFKA_SECURITY_PROTOCOL={value!r}: one of {', '.join(PROTOCOLS)}")
    return value


def uses_tls():
    return protocol() in ("SSL", "SASL_SSL")


def uses_sasl():
    return protocol() in ("SASL_PLAINTEXT", "SASL_SSL")


def ssl_context():
    """The TLS context from the settings, or None for a plain connection."""
    if not uses_tls():
        return None
    context = ssl.create_default_context(cafile=settings.KAFKA_CA_FILE or None)
    context.check_hostname = settings.KAFKA_CHECK_HOSTNAME
    if settings.KAFKA_CERT_FILE:
        context.load_cert_chain(settings.KAFKA_CERT_FILE, settings.KAFKA_KEY_FILE or None)
    return context


def mechanism():
    value = (settings.KAFKA_SASL_MECHANISM or "SCRAM-SHA-256").upper()
    if value not in MECHANISMS:
        raise ValueError(f"CLOGS_KAFKA_SASL_MECHANISM={value!r}: one of {', '.join(MECHANISMS)}")
    return value


def client_options():
    """Keyword arguments for aiokafka's producers, consumers and admin client."""
    options = {"security_protocol": protocol()}
    if uses_tls():
        options["ssl_context"] = ssl_context()
    if uses_sasl():
        options.update(sasl_mechanism=mechanism(), sasl_plain_username=settings.KAFKA_USERNAME or "",
                       sasl_plain_password=settings.KAFKA_PASSWORD or "")
    return options


def faust_credentials():
    """Faust's ``broker_credentials`` (None: plain)."""
    import faust
    from faust.types.auth import SASLMechanism

    if uses_sasl():
        return faust.SASLCredentials(username=settings.KAFKA_USERNAME or "", password=settings.KAFKA_PASSWORD or "",
                                     ssl_context=ssl_context(), mechanism=SASLMechanism(mechanism()))
    if uses_tls():
        return faust.SSLCredentials(ssl_context())
    return None


async def diagnose(bootstrap, timeout=5.0):
    """Why a client could not connect, as one line naming the setting to fix (or None if unclear)."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
    except (OSError, asyncio.TimeoutError):
        return None   # nothing answers: the caller's "cannot reach Kafka ..., start it or check CLOGS_BROKER"
    writer.close()
    if uses_tls():
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(
                host, int(port), ssl=ssl_context(), server_hostname=host), timeout)
            writer.close()
        except ssl.SSLCertVerificationError as exc:
            return (f"the broker's certificate is not trusted ({exc.verify_message}): check CLOGS_KAFKA_CA_FILE"
                    + (" or CLOGS_KAFKA_CHECK_HOSTNAME" if "hostname" in str(exc).lower() else ""))
        except (ssl.SSLError, OSError, asyncio.TimeoutError) as exc:
            return (f"TLS with {host}:{port} failed ({exc.__class__.__name__}: {exc}): is this a TLS listener? "
                    "check CLOGS_BROKER and CLOGS_KAFKA_SECURITY_PROTOCOL")
    if uses_sasl():
        return (f"{mechanism()} authentication as {settings.KAFKA_USERNAME!r} was refused: check "
                "CLOGS_KAFKA_USERNAME / CLOGS_KAFKA_PASSWORD and CLOGS_KAFKA_SASL_MECHANISM")
    return None
