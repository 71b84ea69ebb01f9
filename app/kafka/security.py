"""How every Kafka client of clogs connects -- plain, TLS, SASL (PLAIN, SCRAM-SHA-256/512) or both --
from the CLOGS_KAFKA_* settings: the worker (Faust's ``broker_credentials``), the CLI's producers and
admin client, the trainer and the model service.  ``diagnose`` turns a failed connection to a broker
that answers into one line naming the setting to fix.
"""
import asyncio
import ssl


def uses_tls(settings):
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def uses_sasl(settings):
    return settings.kafka_security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def ssl_context(settings):
    """The TLS context of the settings, or None for a plain connection."""
    if not uses_tls(settings):
        return None
    context = ssl.create_default_context(cafile=settings.kafka_ca_file or None)
    context.check_hostname = settings.kafka_check_hostname
    if settings.kafka_cert_file:
        context.load_cert_chain(settings.kafka_cert_file, settings.kafka_key_file or None)
    return context


def client_options(settings):
    """Keyword arguments for aiokafka's producers, consumers and admin client."""
    options = {"security_protocol": settings.kafka_security_protocol}
    if uses_tls(settings):
        options["ssl_context"] = ssl_context(settings)
    if uses_sasl(settings):
        options.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                       sasl_plain_username=settings.kafka_username or "",
                       sasl_plain_password=settings.kafka_password or "")
    return options


def faust_credentials(settings):
    """Faust's ``broker_credentials`` (None: plain)."""
    import faust   # only the worker needs it: the CLI's clients start without Faust
    from faust.types.auth import SASLMechanism

    if uses_sasl(settings):
        return faust.SASLCredentials(username=settings.kafka_username or "", password=settings.kafka_password or "",
                                     ssl_context=ssl_context(settings),
                                     mechanism=SASLMechanism(settings.kafka_sasl_mechanism))
    if uses_tls(settings):
        return faust.SSLCredentials(ssl_context(settings))
    return None


async def diagnose(settings, bootstrap, timeout=5.0):
    """Why a client could not connect, as one line naming the setting to fix (or None if unclear)."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
    except (OSError, asyncio.TimeoutError):
        return None   # nothing answers: the caller's "cannot reach Kafka ..., start it or check CLOGS_BROKER"
    writer.close()
    if uses_tls(settings):
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(
                host, int(port), ssl=ssl_context(settings), server_hostname=host), timeout)
            writer.close()
        except ssl.SSLCertVerificationError as exc:
            return (f"the broker's certificate is not trusted ({exc.verify_message}): check CLOGS_KAFKA_CA_FILE"
                    + (" or CLOGS_KAFKA_CHECK_HOSTNAME" if "hostname" in str(exc).lower() else ""))
        except (ssl.SSLError, OSError, asyncio.TimeoutError) as exc:
            return (f"TLS with {host}:{port} failed ({exc.__class__.__name__}: {exc}): is this a TLS listener? "
                    "check CLOGS_BROKER and CLOGS_KAFKA_SECURITY_PROTOCOL")
    if uses_sasl(settings):
        return (f"{settings.kafka_sasl_mechanism} authentication as {settings.kafka_username!r} was refused: check "
                "CLOGS_KAFKA_USERNAME / CLOGS_KAFKA_PASSWORD and CLOGS_KAFKA_SASL_MECHANISM")
    return None
