"""The one exception hierarchy of the WeChat push: why a push was refused.

A receiver answers every `PushRejected` the same way (refuse, log the reason code),
so the codes are short stable strings meant for logs, metrics and tests; the
message is "中文 / English" and names the field or setting concerned. Messages never
carry the payload, keys or signatures themselves.
"""

from __future__ import annotations

# Reason codes, grouped by the subclass that raises them.
BAD_SIGNATURE = "bad-signature"  # signature / msg_signature does not match
STALE_TIMESTAMP = "stale-timestamp"  # timestamp missing, not a number, or outside the window
BAD_APPID = "bad-appid"  # decrypted message carries another app id
BAD_BASE64 = "bad-base64"  # Encrypt is not base64
BAD_CIPHERTEXT = "bad-ciphertext"  # ciphertext empty or not a whole number of AES blocks
BAD_PADDING = "bad-padding"  # PKCS#7 pad outside 1..32 or inconsistent
BAD_LENGTH = "bad-length"  # the message length field points outside the plaintext
BAD_ENCODING = "bad-encoding"  # message is not UTF-8
EMPTY_BODY = "empty-body"
TOO_LARGE = "too-large"
UNSUPPORTED_FORMAT = "unsupported-format"  # neither XML (<) nor JSON ({)
MALFORMED_XML = "malformed-xml"
XML_ENTITIES = "xml-entities"  # DTD, entity declaration or external reference
MALFORMED_JSON = "malformed-json"
TOO_COMPLEX = "too-complex"  # nesting or element count beyond the limits
BAD_CHARACTERS = "bad-characters"  # NUL or unpaired surrogates in a value
MISSING_FIELD = "missing-field"
BAD_FIELD = "bad-field"  # a field of the wrong type or out of range
STILL_ENCRYPTED = "still-encrypted"  # an <Encrypt> envelope given to the event parser
# What a receiver answers for every failure past msg_signature (base64, length, padding, the
# length field, UTF-8, the app id): one code, so a caller learns nothing it could probe.
UNDECRYPTABLE = "undecryptable"

REASON_CODES = frozenset(
    {
        BAD_SIGNATURE,
        STALE_TIMESTAMP,
        BAD_APPID,
        BAD_BASE64,
        BAD_CIPHERTEXT,
        BAD_PADDING,
        BAD_LENGTH,
        BAD_ENCODING,
        EMPTY_BODY,
        TOO_LARGE,
        UNSUPPORTED_FORMAT,
        MALFORMED_XML,
        XML_ENTITIES,
        MALFORMED_JSON,
        TOO_COMPLEX,
        BAD_CHARACTERS,
        MISSING_FIELD,
        BAD_FIELD,
        STILL_ENCRYPTED,
        UNDECRYPTABLE,
    }
)


class PushRejected(Exception):
    """A push that must not be acted on. `reason_code` is stable; `message` is "中文 / English"."""

    def __init__(self, reason_code: str, message: str):
        super().__init__(f"{reason_code}: {message}")
        self.reason_code = reason_code
        self.message = message


class BadSignature(PushRejected):
    """signature / msg_signature mismatch, or a timestamp outside the accepted window."""


class BadPayload(PushRejected):
    """The body, the ciphertext or the decrypted message is malformed."""


class AppIdMismatch(PushRejected):
    """The decrypted message was encrypted for another app id."""

    def __init__(self, message: str = "AppId 不匹配 / decrypted message carries another app id"):
        super().__init__(BAD_APPID, message)
