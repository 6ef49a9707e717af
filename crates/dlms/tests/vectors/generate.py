#!/usr/bin/env python3
# Regenerate: `pip install gurux-dlms==1.0.203 && python3 crates/dlms/tests/vectors/generate.py`
# (from the workspace root; rewrites every *.txt vector in this directory, deterministically).
"""Reference byte vectors for the `dlms` crate, produced by Gurux (an independent DLMS/COSEM
implementation, Python package `gurux-dlms`).

Every byte in these files is what Gurux itself produced: this script only configures Gurux with
fixed settings (addresses, passwords, keys, system titles, challenges, invocation counters,
dates) and records its output. Nothing is hand-written.

File format (one vector per `<name>.txt`), line oriented, UTF-8:
    # free comment lines
    key: value
Keys always present: `name`, `description`, `generator` (library and version), `interface`
(`wrapper` or `hdlc`). Settings used appear as further keys (`client_sap`, `server_sap`,
`authentication`, `password`, `security`, `system_title`, `block_cipher_key`,
`authentication_key`, `invocation_counter`, `ctos_challenge`, `stoc_challenge`, ...), all byte
strings in lowercase hex. The bytes:
    apdu:      the APDU exactly as carried on the wire (ciphered when `security` is not none)
    plaintext: for ciphered APDUs, the same request produced by Gurux without ciphering
    frame:     the complete transport frame (IEC 62056-47 TCP wrapper, or HDLC with flags/FCS)
    expected_*: values Gurux computes for the exchange (e.g. the HLS pass-3/4 responses)
    request:   for a response vector (aare-*, rlre-*), the wrapper frame it answers
Requests come from Gurux's client (GXDLMSSecureClient); the aare-*/rlre-* responses from its
server (GXDLMSSecureServer, fed the client's request offline).
"""

import datetime
import os
import sys

import gurux_dlms
from gurux_dlms import GXByteBuffer, GXDateTime, GXServerReply
from gurux_dlms.GXCiphering import GXCiphering
from gurux_dlms.GXSecure import GXSecure
from gurux_dlms.ConnectionState import ConnectionState
from gurux_dlms.enums import (
    AccessMode,
    Authentication,
    Conformance,
    InterfaceType,
    MethodAccessMode,
    Security,
    SourceDiagnostic,
)
from gurux_dlms.objects import (
    GXDLMSAssociationLogicalName,
    GXDLMSClock,
    GXDLMSData,
    GXDLMSDisconnectControl,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
)
from gurux_dlms.secure import GXDLMSSecureClient, GXDLMSSecureServer

try:
    from importlib.metadata import version as _version

    GENERATOR = "gurux-dlms " + _version("gurux-dlms") + " (Python)"
except Exception:  # pragma: no cover - metadata missing
    GENERATOR = "gurux-dlms (Python), " + os.path.dirname(gurux_dlms.__file__)

OUT = os.path.dirname(os.path.abspath(__file__))

# Fixed settings. Keys are the Green Book's example keys.
SERVER_SAP = 1
LLS_PASSWORD = "ABCDEFGH"
HLS_SECRET = bytes.fromhex("4142434445464748494a4b4c4d4e4f50")  # "ABCDEFGHIJKLMNOP"
CLIENT_SYSTEM_TITLE = bytes.fromhex("4d4d4d0000bc614e")
SERVER_SYSTEM_TITLE = bytes.fromhex("4c4e540000000001")
EK = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
AK = bytes.fromhex("d0d1d2d3d4d5d6d7d8d9dadbdcdddedf")
CTOS = bytes.fromhex("50363a4b2d4e5d6c7b8a99a8b7c6d5e4")
STOC = bytes.fromhex("e3c1a5f7092b4d6f8193b5d7f91b3d5f")
IST = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
RANGE_FROM = datetime.datetime(2026, 11, 26, 0, 0, 0, tzinfo=IST)
RANGE_TO = datetime.datetime(2026, 11, 26, 2, 0, 0, tzinfo=IST)

AUTH_NAMES = {
    Authentication.NONE: "none",
    Authentication.LOW: "lls",
    Authentication.HIGH: "hls (mechanism 2, Authentication.HIGH)",
    Authentication.HIGH_GMAC: "hls-gmac (mechanism 5)",
}
SECURITY_NAMES = {
    Security.NONE: "none",
    Security.AUTHENTICATION: "authentication",
    Security.ENCRYPTION: "encryption",
    Security.AUTHENTICATION_ENCRYPTION: "authenticated-encryption",
}

written = []


def hx(b):
    return bytes(b).hex()


def one(msgs):
    """Gurux returns a list of frames; every vector here fits one frame."""
    if isinstance(msgs, (bytes, bytearray)):
        return bytes(msgs)
    if len(msgs) != 1:
        raise SystemExit("expected one frame, Gurux produced %d" % len(msgs))
    return bytes(msgs[0])


def client(
    sap,
    auth=Authentication.NONE,
    password=None,
    security=Security.NONE,
    interface=InterfaceType.WRAPPER,
    server_address=SERVER_SAP,
    ic=1,
):
    c = GXDLMSSecureClient(True, sap, server_address, auth, password, interface)
    if auth > Authentication.LOW:
        c.ctoSChallenge = bytearray(CTOS)
    c.ciphering.systemTitle = bytearray(CLIENT_SYSTEM_TITLE)
    c.ciphering.blockCipherKey = bytearray(EK)
    c.ciphering.authenticationKey = bytearray(AK)
    c.ciphering.security = security
    c.ciphering.invocationCounter = ic
    return c


def settings_of(c, ic=None):
    s = {
        "client_sap": c.clientAddress,
        "server_sap": c.serverAddress,
        "authentication": AUTH_NAMES[c.authentication],
    }
    if c.authentication == Authentication.LOW:
        s["password"] = bytes(c.password).decode("ascii")
    if c.authentication == Authentication.HIGH:
        s["hls_secret"] = hx(c.password)
    if c.authentication > Authentication.LOW:
        s["ctos_challenge"] = hx(CTOS)
    s["security"] = SECURITY_NAMES[c.ciphering.security]
    if c.ciphering.security != Security.NONE or c.authentication == Authentication.HIGH_GMAC:
        s["system_title"] = hx(c.ciphering.systemTitle)
        s["block_cipher_key"] = hx(c.ciphering.blockCipherKey)
        s["authentication_key"] = hx(c.ciphering.authenticationKey)
    if ic is not None:
        s["invocation_counter"] = ic
    return s


def connected(c, general_protection=False):
    """Put the client in the state it has after an accepted AARE (what Gurux checks before
    it produces requests that need an association)."""
    c.settings.connected = c.settings.connected | ConnectionState.DLMS
    conf = c.proposedConformance
    if not general_protection:
        conf &= ~Conformance.GENERAL_PROTECTION
    c.settings.negotiatedConformance = conf
    if c.authentication > Authentication.LOW:
        c.settings.setStoCChallenge(bytearray(STOC))
        c.settings.sourceSystemTitle = bytearray(SERVER_SYSTEM_TITLE)


def write(name, description, settings, frame, interface="wrapper", plaintext=None, extra=None):
    lines = [
        "# Reference vector generated by crates/dlms/tests/vectors/generate.py; do not edit.",
        "name: " + name,
        "description: " + description,
        "generator: " + GENERATOR,
        "interface: " + interface,
    ]
    for k, v in settings.items():
        lines.append("%s: %s" % (k, v))
    for k, v in (extra or {}).items():
        lines.append("%s: %s" % (k, v))
    if interface == "wrapper":
        if len(frame) < 8 or frame[0:2] != b"\x00\x01":
            raise SystemExit(name + ": not a wrapper frame")
        apdu = frame[8:]
        if int.from_bytes(frame[6:8], "big") != len(apdu):
            raise SystemExit(name + ": wrapper length mismatch")
        ic = ciphered_ic(apdu)
        if ic is not None:
            # The counter actually in the ciphered APDU (Gurux may bump it before use).
            lines = [l for l in lines if not l.startswith("invocation_counter: ")]
            lines.append("invocation_counter: %d" % ic)
        lines.append("apdu: " + hx(apdu))
    if plaintext is not None:
        lines.append("plaintext: " + hx(plaintext))
    lines.append("frame: " + hx(frame))
    path = os.path.join(OUT, name + ".txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    written.append(name)


def ciphered_ic(apdu):
    """The invocation counter inside a glo-/general-glo-ciphered APDU (None if plain)."""
    if apdu[:1] == b"\xdb":
        # general-glo-ciphering: tag, system-title (length-prefixed), length, SC, IC.
        st_len = apdu[1]
        rest = apdu[2 + st_len :]
        return int.from_bytes(rest[2:6], "big")
    if apdu[:1] in (b"\xc8", b"\xc9", b"\xcb", b"\xcd", b"\xcf"):
        return int.from_bytes(apdu[3:7], "big")
    if apdu[:1] in (b"\x60", b"\x62"):
        i = apdu.find(b"\xbe")
        if i >= 0 and apdu[i + 2 : i + 4] in (b"\x04\x21", b"\x04\x28"):
            # user-information: BE len 04 len 21 len SC IC
            return int.from_bytes(apdu[i + 7 : i + 11], "big")
    return None


def apdu_of(frame):
    return bytes(frame)[8:]


# ---------------------------------------------------------------- association requests (AARQ)


def aarqs():
    c = client(16)
    write(
        "aarq-public",
        "AARQ, public client, no authentication, no ciphering (LN referencing)",
        settings_of(c),
        one(c.aarqRequest()),
    )

    c = client(32, Authentication.LOW, LLS_PASSWORD)
    write(
        "aarq-lls",
        "AARQ, meter reader, LLS (mechanism 1) with a password, no ciphering",
        settings_of(c),
        one(c.aarqRequest()),
    )

    c = client(48, Authentication.HIGH, HLS_SECRET)
    write(
        "aarq-hls",
        "AARQ, utility settings, HLS mechanism 2 (Authentication.HIGH), no ciphering",
        settings_of(c),
        one(c.aarqRequest()),
    )

    c = client(48, Authentication.HIGH, HLS_SECRET, Security.AUTHENTICATION_ENCRYPTION, ic=1)
    plain = client(48, Authentication.HIGH, HLS_SECRET, Security.NONE)
    plain.ciphering.systemTitle = bytearray(CLIENT_SYSTEM_TITLE)
    write(
        "aarq-hls-ciphered",
        "AARQ, utility settings, HLS mechanism 2, authenticated encryption: calling-AP-title is "
        "the client system title and the user-information is a glo-InitiateRequest (0x21) "
        "ciphered with the global EK/AK; plaintext is the InitiateRequest inside it",
        settings_of(c, ic=1),
        one(c.aarqRequest()),
        plaintext=initiate_request_of(plain),
    )

    c = client(48, Authentication.HIGH_GMAC, None, Security.AUTHENTICATION_ENCRYPTION, ic=1)
    write(
        "aarq-hls-gmac",
        "AARQ, utility settings, HLS-GMAC (mechanism 5), authenticated encryption",
        settings_of(c, ic=1),
        one(c.aarqRequest()),
    )


def initiate_request_of(c):
    """The plain xDLMS InitiateRequest Gurux puts in an AARQ's user-information
    (BE 10 04 0E <initiate-request>): the last 14 bytes of its plain AARQ."""
    a = apdu_of(one(c.aarqRequest()))
    i = a.find(bytes.fromhex("be10040e"))
    if i < 0:
        raise SystemExit("plain AARQ without user-information")
    return a[i + 4 : i + 4 + 14]


# ------------------------------------------------------------------- HLS pass 3 (and pass 4)


def hls_pass3():
    for name, sec, ic in (
        ("action-hls-pass3", Security.NONE, None),
        ("action-hls-pass3-ciphered", Security.AUTHENTICATION_ENCRYPTION, 2),
    ):
        c = client(48, Authentication.HIGH, HLS_SECRET, sec, ic=ic or 1)
        connected(c)
        f_stoc = GXSecure.secure(c.settings, c.ciphering, 0, bytearray(STOC), HLS_SECRET)
        f_ctos = GXSecure.secure(c.settings, c.ciphering, 0, bytearray(CTOS), HLS_SECRET)
        frame = one(c.getApplicationAssociationRequest())
        s = settings_of(c, ic=ic)
        s["stoc_challenge"] = hx(STOC)
        plain = None
        if sec != Security.NONE:
            p = client(48, Authentication.HIGH, HLS_SECRET)
            connected(p)
            plain = apdu_of(one(p.getApplicationAssociationRequest()))
        write(
            name,
            "HLS pass 3, mechanism 2: ACTION current association (15, 0.0.40.0.0.255) method 1 "
            "reply_to_HLS_authentication with f(StoC) = AES-128-ECB(key = HLS secret, StoC)"
            + ("; glo-action-request (0xCB)" if sec != Security.NONE else ""),
            s,
            frame,
            plaintext=plain,
            extra={
                "expected_f_stoc": hx(f_stoc),
                "expected_f_ctos_pass4": hx(f_ctos),
            },
        )

    c = client(48, Authentication.HIGH_GMAC, None, Security.AUTHENTICATION_ENCRYPTION, ic=2)
    connected(c)
    frame = one(c.getApplicationAssociationRequest())
    c2 = client(48, Authentication.HIGH_GMAC, None, Security.AUTHENTICATION_ENCRYPTION, ic=2)
    connected(c2)
    # What the client puts in pass 3 (Gurux computes it with its own system title, IC 2).
    f_stoc = GXSecure.secure(c2.settings, c2.ciphering, 2, bytearray(STOC),
                             bytearray(CLIENT_SYSTEM_TITLE))
    # The server's pass-4 answer: SC(0x10) || IC || GMAC(server system title || CtoS), which
    # Gurux computes with the server system title and the server's invocation counter.
    server_ic = 1
    f_ctos = GXSecure.secure(c2.settings, c2.ciphering, server_ic, bytearray(CTOS),
                             bytearray(SERVER_SYSTEM_TITLE))
    s = settings_of(c, ic=2)
    s["gmac_invocation_counter"] = 2
    s["stoc_challenge"] = hx(STOC)
    s["server_system_title"] = hx(SERVER_SYSTEM_TITLE)
    write(
        "action-hls-gmac-pass3",
        "HLS-GMAC pass 3: glo-action-request carrying ACTION 0.0.40.0.0.255 method 1 with "
        "SC(0x10) || IC || GMAC(SC || AK || StoC) keyed by EK, IV = client system title || IC",
        s,
        frame,
        extra={
            "expected_f_stoc": hx(f_stoc),
            "expected_server_pass4_ic": server_ic,
            "expected_f_ctos_pass4": hx(f_ctos),
        },
    )


# ------------------------------------------------------------------------------ GET requests


def gets():
    clock = GXDLMSClock("0.0.1.0.0.255")
    c = client(16)
    connected(c)
    write(
        "get-clock-public",
        "GET-Request-Normal clock (8, 0.0.1.0.0.255) attribute 2, plain, invoke id 1",
        settings_of(c),
        one(c.read(clock, 2)),
    )

    c = client(48, Authentication.HIGH, HLS_SECRET, Security.AUTHENTICATION_ENCRYPTION, ic=42)
    connected(c)
    p = client(48, Authentication.HIGH, HLS_SECRET)
    connected(p)
    write(
        "get-clock-glo",
        "glo-get-request (0xC8): GET clock attribute 2, authenticated encryption with the "
        "global EK/AK; general protection not negotiated",
        settings_of(c, ic=42),
        one(c.read(clock, 2)),
        plaintext=apdu_of(one(p.read(clock, 2))),
    )

    c = client(48, Authentication.HIGH, HLS_SECRET, Security.AUTHENTICATION_ENCRYPTION, ic=42)
    connected(c, general_protection=True)
    write(
        "get-clock-general-glo",
        "general-glo-ciphering (0xDB): GET clock attribute 2 as Gurux sends it once the server "
        "has negotiated the general-protection conformance bit (tag, system title, ciphered)",
        settings_of(c, ic=42),
        one(c.read(clock, 2)),
        plaintext=apdu_of(one(p.read(clock, 2))),
    )

    reg = GXDLMSRegister("1.0.1.8.0.255")
    c = client(32, Authentication.LOW, LLS_PASSWORD)
    connected(c)
    write(
        "get-register-scaler-unit",
        "GET register (3, 1.0.1.8.0.255 kWh import) attribute 3 (scaler_unit), plain",
        settings_of(c),
        one(c.read(reg, 3)),
    )

    pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
    c = client(32, Authentication.LOW, LLS_PASSWORD)
    connected(c)
    write(
        "get-block-load-capture-objects",
        "GET profile generic (7, 1.0.99.1.0.255 block load) attribute 3 (capture_objects)",
        settings_of(c),
        one(c.read(pg, 3)),
    )

    pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
    c = client(32, Authentication.LOW, LLS_PASSWORD)
    connected(c)
    s = settings_of(c)
    s["from"] = RANGE_FROM.isoformat()
    s["to"] = RANGE_TO.isoformat()
    write(
        "get-block-load-by-range",
        "GET profile generic 1.0.99.1.0.255 attribute 2 with selective access by range "
        "(selector 1): restricting object clock 0.0.1.0.0.255 attribute 2, from/to as "
        "12-byte date-times with deviation -330 (IST), all columns (empty array). Gurux's "
        "readRowsByRange with no capture objects known",
        s,
        one(c.readRowsByRange(pg, GXDateTime(RANGE_FROM), GXDateTime(RANGE_TO))),
    )

    pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
    c = client(48, Authentication.HIGH, HLS_SECRET, Security.AUTHENTICATION_ENCRYPTION, ic=43)
    connected(c)
    p = client(48, Authentication.HIGH, HLS_SECRET)
    connected(p)
    s = settings_of(c, ic=43)
    s["from"] = RANGE_FROM.isoformat()
    s["to"] = RANGE_TO.isoformat()
    write(
        "get-block-load-by-range-glo",
        "glo-get-request: the by-range block-load read above, authenticated encryption",
        s,
        one(c.readRowsByRange(pg, GXDateTime(RANGE_FROM), GXDateTime(RANGE_TO))),
        plaintext=apdu_of(
            one(p.readRowsByRange(GXDLMSProfileGeneric("1.0.99.1.0.255"),
                                  GXDateTime(RANGE_FROM), GXDateTime(RANGE_TO)))
        ),
    )

    ldn = GXDLMSData("0.0.42.0.0.255")
    c = client(16)
    connected(c)
    write(
        "get-logical-device-name",
        "GET data (1, 0.0.42.0.0.255 logical device name) attribute 2, plain",
        settings_of(c),
        one(c.read(ldn, 2)),
    )


# --------------------------------------------------------------------------- ACTION requests


def actions():
    dc = GXDLMSDisconnectControl("0.0.96.3.10.255")
    c = client(48, Authentication.HIGH, HLS_SECRET)
    connected(c)
    write(
        "action-remote-disconnect",
        "ACTION-Request-Normal disconnect control (70, 0.0.96.3.10.255) method 1 "
        "remote_disconnect, parameter integer 0, plain",
        settings_of(c),
        one(dc.remoteDisconnect(c)),
    )
    c = client(48, Authentication.HIGH, HLS_SECRET)
    connected(c)
    write(
        "action-remote-reconnect",
        "ACTION-Request-Normal disconnect control 0.0.96.3.10.255 method 2 remote_reconnect",
        settings_of(c),
        one(dc.remoteReconnect(c)),
    )

    c = client(48, Authentication.HIGH, HLS_SECRET, Security.AUTHENTICATION_ENCRYPTION, ic=44)
    connected(c)
    p = client(48, Authentication.HIGH, HLS_SECRET)
    connected(p)
    write(
        "action-remote-disconnect-glo",
        "glo-action-request (0xCB): remote_disconnect, authenticated encryption",
        settings_of(c, ic=44),
        one(dc.remoteDisconnect(c)),
        plaintext=apdu_of(one(dc.remoteDisconnect(p))),
    )


# ------------------------------------------------------------------------------------ release


def releases():
    c = client(16)
    connected(c)
    write(
        "rlrq-public",
        "RLRQ (A-RELEASE request), reason normal, no user-information",
        settings_of(c),
        one(c.releaseRequest()),
    )

    c = client(48, Authentication.HIGH, HLS_SECRET, Security.AUTHENTICATION_ENCRYPTION, ic=45)
    connected(c)
    c.useProtectedRelease = True
    s = settings_of(c, ic=45)
    s["protected_release"] = "true"
    write(
        "rlrq-protected",
        "RLRQ with a glo-ciphered InitiateRequest as user-information (Gurux "
        "useProtectedRelease; Gurux bumps the invocation counter once before ciphering)",
        s,
        one(c.releaseRequest()),
    )


# ----------------------------------------------------------------------------------- HDLC


def connected_public():
    c = client(16)
    connected(c)
    return c


def hdlc():
    c = client(16, interface=InterfaceType.HDLC)
    write(
        "hdlc-snrm",
        "HDLC SNRM, server address 1 (one byte), client 16, default HDLC parameters",
        settings_of(c),
        one(c.snrmRequest()),
        interface="hdlc",
    )

    addr = GXDLMSSecureClient.getServerAddress(1, 0x100)
    c = client(16, interface=InterfaceType.HDLC, server_address=addr)
    c.hdlcSettings.maxInfoTX = 512
    c.hdlcSettings.maxInfoRX = 512
    s = settings_of(c)
    s["server_logical_address"] = 1
    s["server_physical_address"] = 256
    s["max_info_tx"] = 512
    s["max_info_rx"] = 512
    write(
        "hdlc-snrm-4byte-address",
        "HDLC SNRM, 4-byte server address (logical 1, physical 256), client 16, with the "
        "HDLC parameter negotiation field for max info length 512",
        s,
        one(c.snrmRequest()),
        interface="hdlc",
    )

    c = client(16, interface=InterfaceType.HDLC)
    c.settings.connected = ConnectionState.HDLC
    aarq = one(c.aarqRequest())
    write(
        "hdlc-iframe-aarq-public",
        "HDLC I-frame (first I-frame after UA: N(S)=0, N(R)=0, poll) carrying LLC "
        "E6 E6 00 and the public AARQ",
        settings_of(c),
        aarq,
        interface="hdlc",
        extra={"apdu": hx(apdu_of(one(client(16).aarqRequest())))},
    )
    c.settings.connected = ConnectionState.HDLC | ConnectionState.DLMS
    write(
        "hdlc-iframe-get-clock",
        "HDLC I-frame (second I-frame: N(S)=1, N(R)=1) carrying GET clock attribute 2",
        settings_of(c),
        one(c.read(GXDLMSClock("0.0.1.0.0.255"), 2)),
        interface="hdlc",
        extra={"apdu": hx(apdu_of(one(connected_public().read(GXDLMSClock("0.0.1.0.0.255"), 2))))},
    )
    write(
        "hdlc-disc",
        "HDLC DISC, server address 1, client 16 (Gurux's disconnectRequest on HDLC)",
        settings_of(c),
        one(c.disconnectRequest()),
        interface="hdlc",
    )


# ------------------------------------------------------------------ responses (Gurux server)


class VectorServer(GXDLMSSecureServer):
    """A Gurux server with one association, used offline to answer the requests above.

    Only the ACSE responses are produced this way: in gurux-dlms 1.0.203 the Python server
    cannot answer GET/ACTION (it calls a missing `notifyRead`) nor build a ciphered AARE."""

    def __init__(self, sap, auth, secret):
        super().__init__(True, InterfaceType.WRAPPER)
        # The 1.0.203 secure server stores its ciphering where the settings do not look for it.
        self.settings.cipher = GXCiphering(bytearray(SERVER_SYSTEM_TITLE))
        self.sap, self.auth, self.secret = sap, auth, secret
        ln = GXDLMSAssociationLogicalName()
        ln.secret = secret
        clock = GXDLMSClock("0.0.1.0.0.255")
        for o in (ln, clock):
            self.items.append(o)
            ln.objectList.append(o)
        self.initialize()

    def isTarget(self, serverAddress, clientAddress):
        return clientAddress == self.sap

    def onValidateAuthentication(self, authentication, password):
        if authentication != self.auth:
            return SourceDiagnostic.AUTHENTICATION_MECHANISM_NAME_REQUIRED
        if authentication == Authentication.LOW and bytes(password) != self.secret:
            return SourceDiagnostic.AUTHENTICATION_FAILURE
        return SourceDiagnostic.NONE

    def answer(self, frame):
        # The server draws its StoC challenge at random; make it the fixed STOC.
        saved = GXSecure.__dict__["generateChallenge"]
        GXSecure.generateChallenge = classmethod(lambda cls: bytearray(STOC))
        try:
            sr = _Reply(bytearray(frame))
            self.handleRequest(sr)
        finally:
            GXSecure.generateChallenge = saved
        return bytes(sr.reply)

    def onGetAttributeAccess(self, arg):
        return AccessMode.READ

    def onGetMethodAccess(self, arg):
        return MethodAccessMode.ACCESS

    def onPreGet(self, args):
        pass

    def onPostGet(self, args):
        pass

    def onFindObject(self, objectType, sn, ln):
        return None

    def onPreRead(self, args):
        pass

    def onPostRead(self, args):
        pass

    def onPreWrite(self, args):
        pass

    def onPostWrite(self, args):
        pass

    def onPreAction(self, args):
        pass

    def onPostAction(self, args):
        pass

    def onConnected(self, connectionInfo):
        pass

    def onInvalidConnection(self, connectionInfo):
        pass

    def onDisconnected(self, connectionInfo):
        pass


class _Reply(GXServerReply):
    # gurux-dlms 1.0.203's server calls these two, which its GXServerReply lacks.
    def setReply(self, value):
        self.reply = value

    def getConnectionInfo(self):
        return self.connectionInfo


def server_settings(sap, auth, secret):
    s = {"client_sap": sap, "server_sap": SERVER_SAP, "authentication": AUTH_NAMES[auth]}
    if auth == Authentication.LOW:
        s["server_password"] = secret.decode("ascii")
    if auth == Authentication.HIGH:
        s["hls_secret"] = hx(secret)
        s["stoc_challenge"] = hx(STOC)
    s["security"] = "none"
    return s


def responses():
    cases = (
        ("aare-public", 16, Authentication.NONE, None, client(16),
         "AARE accepted, public client, no authentication (answer to aarq-public)"),
        ("aare-lls", 32, Authentication.LOW, LLS_PASSWORD.encode(),
         client(32, Authentication.LOW, LLS_PASSWORD),
         "AARE accepted, LLS password correct (answer to aarq-lls)"),
        ("aare-lls-rejected", 32, Authentication.LOW, b"OTHERPWD",
         client(32, Authentication.LOW, LLS_PASSWORD),
         "AARE rejected-permanent, diagnostic acse-service-user authentication-failure (13): "
         "the server's password differs from the one in aarq-lls"),
        # No HLS AARE: gurux-dlms 1.0.203's server writes the responding-authentication-value
        # [AA] with the challenge's length (0x10) instead of 0x12 (_GXAPDU.generateAARE), so
        # its bytes are not valid BER and would mislead a decoder.
    )
    for name, sap, auth, secret, c, description in cases:
        srv = VectorServer(sap, auth, secret)
        aarq = one(c.aarqRequest())
        aare = srv.answer(aarq)
        s = server_settings(sap, auth, secret)
        write(name, description, s, aare, extra={"request": hx(aarq)})
        # No RLRE either: the 1.0.203 server's handleReleaseRequest gives the RLRE the length of
        # its user-information alone (63 0e ... for 20 bytes of content).


def main():
    for f in os.listdir(OUT):
        if f.endswith(".txt"):
            os.remove(os.path.join(OUT, f))
    aarqs()
    hls_pass3()
    gets()
    actions()
    releases()
    hdlc()
    responses()
    print("wrote %d vectors to %s" % (len(written), OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
