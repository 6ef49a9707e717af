#!/usr/bin/env python3
"""Read one meter of `urja sim` with Gurux, an independent DLMS/COSEM client (interop check).

Usage:
    gurux_read.py --keys KEYS --host 127.1.0.1 --port 4059 --association public|meter-reader|
                  utility-settings [--hours 2] [--secret S] [--ek HEX] [--ak HEX]
                  [--system-title HEX] [--invocation-counter N] [--max-pdu N] [--trace]

KEYS is the key file `urja sim --keys-out` writes (JSON `urja-sim-keys/1`, or CSV). The meter is
the one with that address and port. `--secret`, `--ek`, `--ak` replace the key file's values (to
check that the meter refuses a wrong password or key).

It associates over the meter's transport, the TCP wrapper or HDLC on TCP (AARQ/AARE, plus HLS
pass 3/4 for HLS), reads the clock, a register with its scaler and unit, the block-load capture
objects and the block-load rows of the last `--hours` hours by range, then releases (RLRQ; and
DISC on HDLC) and closes. The public client reads only
the clock and the logical device name, and tries the block load, which the meter must refuse.

Prints one JSON object on stdout. Exit status: 0 read everything; 2 the meter refused the
association (AARE rejected, or HLS pass 3/4 failed); 1 any other error (JSON has "ok": false).
"""

import argparse
import csv
import datetime
import json
import os
import sys
import traceback

from gurux_common import ReceiveParameters
from gurux_dlms import GXByteBuffer, GXDateTime, GXDLMSException, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType, Security
from gurux_dlms.objects import GXDLMSClock, GXDLMSData, GXDLMSProfileGeneric, GXDLMSRegister
from gurux_dlms.secure import GXDLMSSecureClient
from gurux_net import GXNet
from gurux_net.enums import NetworkType

WAIT_MS = 5000
IST = datetime.timezone(datetime.timedelta(hours=5, minutes=30))

ASSOCIATION_SAP = {"public": 16, "meter-reader": 32, "utility-settings": 48}
MECHANISMS = {
    "none": Authentication.NONE,
    "lls": Authentication.LOW,
    "hls": Authentication.HIGH,
    "hls-gmac": Authentication.HIGH_GMAC,
}
SECURITY = {
    "none": Security.NONE,
    "authentication": Security.AUTHENTICATION,
    "encryption": Security.ENCRYPTION,
    "authenticated-encryption": Security.AUTHENTICATION_ENCRYPTION,
}

CLOCK = "0.0.1.0.0.255"
LOGICAL_DEVICE_NAME = "0.0.42.0.0.255"
KWH_IMPORT = "1.0.1.8.0.255"
VOLTAGE = "1.0.12.7.0.255"
VOLTAGE_R_PHASE = "1.0.32.7.0.255"
BLOCK_LOAD = "1.0.99.1.0.255"


class Refused(Exception):
    """The meter refused the association."""


class Trace:
    def __init__(self, on):
        self.on = on

    def __call__(self, direction, data):
        if self.on:
            print("%s %s" % (direction, bytes(data).hex()), file=sys.stderr)


# ------------------------------------------------------------------------------------ key file


def load_meter(path, host, port):
    if path.endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        meters = []
        for r in rows:
            meters.append(
                {
                    "serial": r["serial"],
                    "kind": r["kind"],
                    "address": r["address"],
                    "port": int(r["port"]),
                    "transport": r["transport"],
                    "server_sap": int(r["server_sap"]),
                    "system_title": r["system_title"],
                    "global_encryption_key": r["global_encryption_key"],
                    "global_authentication_key": r["global_authentication_key"],
                    "associations": [
                        {"name": "public", "client_sap": 16, "mechanism": "none",
                         "security": "none"},
                        {"name": "meter-reader", "client_sap": 32, "mechanism": "lls",
                         "secret": r["lls_secret"], "security": "none"},
                        {"name": "utility-settings", "client_sap": 48, "mechanism": "hls",
                         "secret": r["hls_secret_utility"],
                         "security": "authenticated-encryption"},
                    ],
                }
            )
    else:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        if doc.get("format") != "urja-sim-keys/1":
            raise ValueError("unknown key file format %r" % doc.get("format"))
        meters = doc["meters"]
    for m in meters:
        if m["address"] == host and int(m["port"]) == port:
            return m
    raise ValueError("no meter at %s:%d in %s" % (host, port, path))


# ------------------------------------------------------------------------------- transport


class Reader:
    """Gurux client plus GXNet media: request/response over the TCP wrapper."""

    def __init__(self, client, media, trace):
        self.client = client
        self.media = media
        self.trace = trace

    def exchange(self, data, reply):
        if not data:
            return
        notify = GXReplyData()
        reply.error = 0
        hdlc = self.client.interfaceType == InterfaceType.HDLC
        p = ReceiveParameters()
        p.eop = 0x7E if hdlc else None
        p.allData = True
        p.waitTime = WAIT_MS
        p.count = 5 if hdlc else 8
        self.media.eop = p.eop
        rd = GXByteBuffer()
        with self.media.getSynchronous():
            if not reply.isStreaming():
                self.trace("TX", data)
                self.media.send(data)
            while not self.client.getData(rd, reply, notify):
                if notify.data.size != 0:
                    notify.clear()
                    continue
                if not hdlc:
                    p.count = self.client.getFrameSize(rd)
                if not self.media.receive(p):
                    raise TimeoutError("no reply from the meter within %d ms" % WAIT_MS)
                rd.set(p.reply)
                p.reply = None
            self.trace("RX", rd.array())
        if reply.error != 0:
            raise GXDLMSException(reply.error)

    def exchange_all(self, frames, reply):
        """Send the frames of one request; follow a long (block) answer to the end."""
        if isinstance(frames, (bytes, bytearray)):
            frames = [frames]
        for it in frames or []:
            reply.clear()
            self.exchange(it, reply)
            while reply.isMoreData():
                nxt = None if reply.isStreaming() else self.client.receiverReady(reply)
                self.exchange(nxt, reply)

    def read(self, item, attribute):
        reply = GXReplyData()
        self.exchange_all(self.client.read(item, attribute), reply)
        value = reply.value
        self.client.updateValue(item, attribute, value)
        return value

    def rows_by_range(self, pg, start, end):
        reply = GXReplyData()
        self.exchange_all(self.client.readRowsByRange(pg, start, end), reply)
        self.client.updateValue(pg, 2, reply.value)
        return pg.buffer


# ------------------------------------------------------------------------------- formatting


def iso(value):
    """A Gurux GXDateTime (or datetime) as ISO 8601 with its UTC offset."""
    if isinstance(value, GXDateTime):
        value = value.value
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)


def plain(value):
    if isinstance(value, (GXDateTime, datetime.datetime)):
        return iso(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, list):
        return [plain(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, (int, float, str)):
        return plain(value.value)
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)


def error_text(e):
    if isinstance(e, GXDLMSException):
        return "%s: %s" % (type(e).__name__, str(e).replace("\r\n", "; "))
    return "%s: %s" % (type(e).__name__, e)


# ------------------------------------------------------------------------------------ session


def associate(reader):
    client = reader.client
    reply = GXReplyData()
    snrm = client.snrmRequest()  # HDLC only: SNRM/UA sets up the link first
    if snrm:
        reader.exchange_all(snrm, reply)
        client.parseUAResponse(reply.data)
        reply.clear()
    try:
        reader.exchange_all(client.aarqRequest(), reply)
        client.parseAareResponse(reply.data)
    except GXDLMSException as e:
        raise Refused("AARE: " + error_text(e)) from e
    if client.authentication > Authentication.LOW:
        reply.clear()
        try:
            reader.exchange_all(client.getApplicationAssociationRequest(), reply)
            client.parseApplicationAssociationResponse(reply.data)
        except GXDLMSException as e:
            raise Refused("HLS pass 3/4: " + error_text(e)) from e
        except Exception as e:  # Gurux raises a bare Exception when f(CtoS) does not match.
            if "do not match" in str(e):
                raise Refused("HLS pass 4: " + error_text(e)) from e
            raise


def release(reader):
    reply = GXReplyData()
    reader.exchange_all(reader.client.releaseRequest(), reply)
    if reader.client.interfaceType == InterfaceType.HDLC:
        reply.clear()
        reader.exchange_all(reader.client.disconnectRequest(), reply)  # DISC, answered by UA


def read_public(reader, out, hours):
    ldn = GXDLMSData(LOGICAL_DEVICE_NAME)
    out["logical_device_name"] = plain(reader.read(ldn, 2))
    if isinstance(out["logical_device_name"], str):
        try:
            out["logical_device_name"] = bytes.fromhex(out["logical_device_name"]).decode("ascii")
        except ValueError:
            pass
    pg = GXDLMSProfileGeneric(BLOCK_LOAD)
    end = datetime.datetime.now(IST)
    start = end - datetime.timedelta(hours=hours)
    try:
        reader.rows_by_range(pg, GXDateTime(start), GXDateTime(end))
        out["block_load_refused"] = False
        out["block_load_rows"] = len(pg.buffer)
    except GXDLMSException as e:
        out["block_load_refused"] = True
        out["block_load_error"] = error_text(e)
        out["block_load_error_code"] = getattr(e, "errorCode", None)


def read_register(reader, obis):
    reg = GXDLMSRegister(obis)
    su = reader.read(reg, 3)
    if not isinstance(su, list) or len(su) != 2:
        raise ValueError("scaler_unit of %s is not a structure of two: %r" % (obis, su))
    raw = reader.read(reg, 2)
    unit = int(su[1])
    return {
        "obis": obis,
        "scaler": int(su[0]),
        "unit": unit,
        "raw_value": plain(raw),
        "value": raw * (10 ** int(su[0])) if isinstance(raw, (int, float)) else plain(raw),
    }


def read_block_load(reader, out, hours):
    pg = GXDLMSProfileGeneric(BLOCK_LOAD)
    reader.read(pg, 3)
    out["capture_objects"] = [
        {
            "class_id": int(obj.objectType),
            "obis": obj.logicalName,
            "attribute": co.attributeIndex,
            "data_index": co.dataIndex,
        }
        for obj, co in pg.captureObjects
    ]
    out["capture_period"] = plain(reader.read(pg, 4))
    # Scaler and unit of each register column (class 3/4/5), to scale the row values.
    channels = []
    for obj, co in pg.captureObjects[1:]:
        ch = {"obis": obj.logicalName, "class_id": int(obj.objectType)}
        if int(obj.objectType) in (3, 4, 5) and co.attributeIndex == 2:
            su = reader.read(GXDLMSRegister(obj.logicalName), 3)
            ch["scaler"], ch["unit"] = int(su[0]), int(su[1])
        channels.append(ch)
    out["channels"] = channels
    end = datetime.datetime.now(IST).replace(microsecond=0)
    start = end - datetime.timedelta(hours=hours)
    out["range"] = {"from": start.isoformat(), "to": end.isoformat()}
    rows = reader.rows_by_range(pg, GXDateTime(start), GXDateTime(end))
    out["rows"] = [
        {"timestamp": iso(r[0]) if r else None, "values": [plain(v) for v in r[1:]]}
        for r in rows
    ]


def run(args):
    meter = load_meter(args.keys, args.host, args.port)
    assoc = next(a for a in meter["associations"] if a["name"] == args.association)
    mechanism = MECHANISMS[assoc["mechanism"]]
    security = SECURITY[assoc.get("security", "none")]
    secret = args.secret if args.secret is not None else assoc.get("secret")
    if mechanism == Authentication.LOW:
        password = secret.encode("ascii")
    elif mechanism == Authentication.HIGH:
        password = bytes.fromhex(secret)
    else:
        password = None

    transport = meter.get("transport", "wrapper")
    interface = {"wrapper": InterfaceType.WRAPPER, "hdlc": InterfaceType.HDLC}[transport]
    client = GXDLMSSecureClient(
        True, assoc["client_sap"], int(meter.get("server_sap", 1)), mechanism, password,
        interface,
    )
    if args.max_pdu:
        # Smaller than a long answer: the meter must then send it in blocks (GET-with-datablock).
        client.maxReceivePDUSize = args.max_pdu
    if security != Security.NONE or mechanism == Authentication.HIGH_GMAC:
        client.ciphering.security = security
        # Our own (client) system title; the meter's comes back in the AARE. The meter rejects
        # a counter it has already accepted from a system title (replay protection), so every
        # run is a fresh client ("GXP" + 5 random bytes) starting at counter 1, unless told.
        title = args.system_title or (b"GXP" + os.urandom(5)).hex()
        client.ciphering.systemTitle = bytearray.fromhex(title)
        client.ciphering.blockCipherKey = bytearray.fromhex(
            args.ek or meter["global_encryption_key"])
        client.ciphering.authenticationKey = bytearray.fromhex(
            args.ak or meter["global_authentication_key"])
        client.ciphering.invocationCounter = args.invocation_counter

    out = {
        "ok": False,
        "meter": meter.get("serial"),
        "kind": meter.get("kind"),
        "host": args.host,
        "port": args.port,
        "association": args.association,
        "transport": meter.get("transport", "wrapper"),
        "client_sap": assoc["client_sap"],
        "mechanism": assoc["mechanism"],
        "security": assoc.get("security", "none"),
    }
    media = GXNet(NetworkType.TCP, args.host, args.port)
    reader = Reader(client, media, Trace(args.trace))
    stage = "connect"
    try:
        media.open()
        stage = "associate"
        associate(reader)
        out["associated"] = True
        if security != Security.NONE:
            out["client_system_title"] = bytes(client.ciphering.systemTitle).hex()
        if security != Security.NONE:
            out["server_system_title"] = bytes(client.settings.sourceSystemTitle or b"").hex()
        out["negotiated_conformance"] = int(client.negotiatedConformance)
        out["max_pdu_size"] = client.maxReceivePDUSize

        stage = "clock"
        clock = GXDLMSClock(CLOCK)
        reader.read(clock, 2)
        out["clock"] = iso(clock.time)

        if args.association == "public":
            stage = "public objects"
            read_public(reader, out, args.hours)
        else:
            stage = "register"
            out["register"] = read_register(reader, KWH_IMPORT)
            kind = meter.get("kind", "single-phase")
            out["voltage"] = read_register(
                reader, VOLTAGE if kind == "single-phase" else VOLTAGE_R_PHASE)
            stage = "block load"
            read_block_load(reader, out, args.hours)

        stage = "release"
        release(reader)
        out["released"] = True
        out["ok"] = True
        return out, 0
    except Refused as e:
        out["refused"] = True
        out["stage"] = stage
        out["error"] = str(e)
        return out, 2
    except Exception as e:  # report any failure as JSON, with where it happened
        out["stage"] = stage
        out["error"] = error_text(e)
        if args.trace:
            traceback.print_exc(file=sys.stderr)
        return out, 1
    finally:
        try:
            media.close()
        except Exception:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", required=True, help="key file written by `urja sim --keys-out`")
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", required=True, type=int)
    ap.add_argument("--association", required=True, choices=sorted(ASSOCIATION_SAP))
    ap.add_argument("--hours", type=float, default=2.0, help="block-load range, hours back")
    ap.add_argument("--secret", help="use this LLS password / HLS secret (hex) instead")
    ap.add_argument("--ek", help="use this global encryption key (hex) instead")
    ap.add_argument("--ak", help="use this global authentication key (hex) instead")
    ap.add_argument("--system-title", help="client system title, 16 hex digits (default random)")
    ap.add_argument("--invocation-counter", type=int, default=1,
                    help="first invocation counter to send (default 1)")
    ap.add_argument("--max-pdu", type=int, help="client max receive PDU size to propose")
    ap.add_argument("--trace", action="store_true", help="hex trace of the frames on stderr")
    args = ap.parse_args()
    # Gurux prints progress notes ("Encryption is applied.") on stdout: keep stdout for the JSON.
    stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        out, code = run(args)
    except Exception as e:
        out, code = {"ok": False, "stage": "setup", "error": error_text(e)}, 1
    finally:
        sys.stdout = stdout
    print(json.dumps(out))
    if code != 0:
        print("gurux_read: %s" % out.get("error"), file=sys.stderr)
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
