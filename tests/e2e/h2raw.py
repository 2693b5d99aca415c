"""A raw HTTP/2 client written from RFC 9113 (framing) and RFC 7541
(HPACK, literals only), for tests that must send what no well-behaved
client would: resets by the thousand, endless CONTINUATION frames, SETTINGS
and PING floods, a window never opened."""
import socket
import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
CANCEL, ENHANCE_YOUR_CALM = 0x8, 0xb
INITIAL_WINDOW_SIZE = 0x4


def frame(ftype, flags, stream, payload=b""):
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, stream & 0x7FFFFFFF) + payload


def _int(value, prefix_bits, first=0):
    """RFC 7541 5.1 integer with an N-bit prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(name, value):
    """Literal header field without indexing, new name (RFC 7541 6.2.2)."""
    n, v = name.encode(), value.encode()
    return b"\x00" + _int(len(n), 7) + n + _int(len(v), 7) + v


def request_block(path="/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                  extra=()):
    return b"".join([literal(":method", "POST"), literal(":scheme", "http"),
                     literal(":path", path), literal(":authority", "x"),
                     literal("content-type", "application/grpc"), literal("te", "trailers")] +
                    [literal(k, v) for k, v in extra])


def grpc_message(body=b""):
    return b"\x00" + struct.pack(">I", len(body)) + body


class Stalled(Exception):
    """The server stopped reading but kept the connection open."""


class Conn:
    def __init__(self, port, settings=()):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        payload = b"".join(struct.pack(">HI", k, v) for k, v in settings)
        self.s.sendall(PREFACE + frame(SETTINGS, 0, 0, payload))
        self.buf = b""
        self.next_id = 1

    def send(self, data, timeout=5.0):
        """False once the server has closed the connection. Stalled when the
        server takes nothing for `timeout` seconds: without a bound, a server
        that stops reading would hold the test until the kernel gives up on
        the connection (a quarter of an hour)."""
        self.s.settimeout(timeout)
        try:
            self.s.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False
        except socket.timeout as e:
            raise Stalled(f"server took nothing for {timeout}s") from e

    def stream_id(self):
        i = self.next_id
        self.next_id += 2
        return i

    def frames(self, timeout=5.0):
        """Every frame the server sends until it closes (or timeout)."""
        self.s.settimeout(timeout)
        try:
            while True:
                b = self.s.recv(65536)
                if not b:
                    break
                self.buf += b
        except (socket.timeout, ConnectionResetError):
            pass
        out, p = [], 0
        while len(self.buf) - p >= 9:
            hi, lo, ftype, flags, sid = struct.unpack(">BHBBI", self.buf[p:p + 9])
            n = (hi << 16) | lo
            if len(self.buf) - p - 9 < n:
                break
            out.append((ftype, flags, sid & 0x7FFFFFFF, self.buf[p + 9:p + 9 + n]))
            p += 9 + n
        return out

    def closed(self, timeout=5.0):
        """True when the server closes the connection within timeout."""
        self.s.settimeout(timeout)
        try:
            while True:
                b = self.s.recv(65536)
                if not b:
                    return True
                self.buf += b
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


def goaway_code(frames):
    for ftype, _, _, payload in frames:
        if ftype == GOAWAY and len(payload) >= 8:
            return struct.unpack(">I", payload[4:8])[0]
    return None
