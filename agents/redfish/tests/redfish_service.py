#!/usr/bin/python3
# redfish_service.py -- a small DMTF Redfish service for stockade's tests and benchmark (Debian
# packages no Redfish server).  It serves, over HTTPS on one 127.0.0.0/8 address, what a BMC exposes
# for power control: the service root, the Systems collection, one or more ComputerSystems with
# PowerState and the #ComputerSystem.Reset action (ResetType@Redfish.AllowableValues or an
# ActionInfo), the SessionService (X-Auth-Token sessions), and a TaskService for resets answered
# with 202 Accepted.  Each system's "node" is a real process: ForceOff kills it, On starts a new
# one, so a test reads the outcome from the process table, not from this service's word.
#
# python3 rather than C++: the standard library has a threaded HTTP/1.1 server and TLS, so the
# whole service is one readable file that runs wherever python3 does, with no build step.
#
# Start: redfish_service.py DIR.  DIR/config.json (written by the test fixture) holds the address,
# port, certificate, users (passwords never on argv) and systems.  DIR/control.json is re-read on
# every request and injects faults and delays while the service runs (see Control below).  Every
# connection and request is appended to DIR/requests.log; open sessions are mirrored to
# DIR/sessions.json; the node of system S has its pid in DIR/S.node.pid.
import base64
import json
import os
import secrets
import select
import signal
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = "/redfish/v1"
ALL_RESET_TYPES = ["On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "ForceOn",
                   "PushPowerButton", "PowerCycle", "Nmi"]
# The node is coreutils' tail, which exits once this service is gone (--pid): a real node's boot
# does not run on the fencing host, and this one's start should cost the client under test as
# little of a 2-core machine as it can (perl's start was ~1.5 ms of CPU on every On, tail's ~0.9).
# The service closes the node's inherited descriptors itself (start_node).
NODE_PROGRAM = "/usr/bin/tail"


lock = threading.RLock()
DIR = sys.argv[1] if len(sys.argv) > 1 else "."
with open(os.path.join(DIR, "config.json")) as f:
    CONFIG = json.load(f)
USERS = {u["name"]: u for u in CONFIG.get("users", [])}
SYSTEMS = CONFIG.get("systems", ["1"])
# Where the Systems collection is (Redfish fixes ROOT/Systems; an older service may put it elsewhere
# and name it only in the service root).
SYSTEMS_COLLECTION = CONFIG.get("systems_collection", ROOT + "/Systems")
sessions = {}          # id -> {"token": ..., "user": ...}
conn_counter = [0]
task_counter = [0]
tasks = {}             # id -> {"done_at": t, "state": ...}
pending = {}           # system -> threading.Timer (a transition in progress)
transition = {}        # system -> "PoweringOff" | "PoweringOn" while a delayed change runs


def control():
    """Faults and delays, re-read on every request (the test rewrites the file between steps).
    fault: none | 401 | 403 (resets refused) | 503 | hang | stuck (reset accepted, nothing happens) |
    task (reset answered 202 + task monitor); fail_count: only the next N requests get the fault
    (503); delay_ms: every answer is that late; drop_idle: the connection is closed after every
    answer, unannounced; off_delay_ms / on_delay_ms: PoweringOff/PoweringOn
    lasts that long; restart_off_ms: how long ForceRestart keeps the node off; task_ms."""
    try:
        with open(os.path.join(DIR, "control.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def log(line):
    with lock:
        with open(os.path.join(DIR, "requests.log"), "a") as f:
            f.write(line + "\n")


def node_pidfile(system):
    return os.path.join(DIR, system + ".node.pid")


def node_pid(system):
    try:
        with open(node_pidfile(system)) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0
    if pid <= 0:
        return 0
    try:
        os.kill(pid, 0)
    except OSError:
        return 0
    # A zombie is not a running node.
    try:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().split(")")[-1].split()[0] == "Z":
                return 0
    except OSError:
        return 0
    return pid


def start_node(system):
    """Starts the node; it runs (its pid is in the pid file and alive) when this returns, so On
    is never reported before it is started."""
    if node_pid(system):
        return
    # posix_spawn (glibc's is a CLONE_VFORK child that only execs), never a fork of this threaded
    # server, so it may run in a request handler; every descriptor of ours is close-on-exec (PEP 446).
    devnull = os.open(os.devnull, os.O_RDWR)
    # Descriptors this service inherited without close-on-exec (its own are all close-on-exec,
    # PEP 446) are closed in the node, so it holds nothing of its parent's.
    inherited = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if fd > 2 and fd != devnull and os.get_inheritable(fd):
                inherited.append((os.POSIX_SPAWN_CLOSE, fd))
        except OSError:  # the listing's own descriptor, already closed
            pass
    try:
        pid = os.posix_spawn(NODE_PROGRAM, ["stockade-redfish-node " + DIR, "--pid=%d" % os.getpid(), "-s", "0.5",
                                            "-f", "/dev/null"], dict(os.environ),
                             file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
                                           (os.POSIX_SPAWN_DUP2, devnull, 2)] + inherited,
                             setsid=True, setsigdef=(signal.SIGCHLD,))
    finally:
        os.close(devnull)
    with open(node_pidfile(system), "w") as f:
        f.write(str(pid))
    # Dead nodes are reaped by the kernel: SIGCHLD is ignored (main).


def stop_node(system):
    """SIGKILLs the node and returns once it has exited, so Off is never reported while it runs.
    Its pidfd becomes readable the moment it exits: no polling pause (a 5 ms poll made every
    ForceOff answer ~5 ms late, for fence_redfish and stockade alike)."""
    pid = node_pid(system)
    if pid:
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # gone already
            fd = -1
        if fd >= 0:
            try:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
                select.select([fd], [], [], 1.0)
            except OSError:
                pass
            finally:
                os.close(fd)
        for _ in range(1000):  # the last word is node_pid's (a zombie is not a running node)
            if not node_pid(system):
                break
            time.sleep(0.001)
    try:
        os.unlink(node_pidfile(system))
    except OSError:
        pass


def power_state(system):
    with lock:
        if system in transition:
            return transition[system]
        return "On" if node_pid(system) else "Off"


def later(system, delay_ms, label, fn):
    """Runs fn after delay_ms with PowerState showing `label` meanwhile (or at once when 0)."""
    with lock:
        if system in pending:
            pending.pop(system).cancel()
            transition.pop(system, None)
        if delay_ms <= 0:
            fn()
            return

        def run():
            with lock:
                pending.pop(system, None)
                transition.pop(system, None)
                fn()
        t = threading.Timer(delay_ms / 1000.0, run)
        t.daemon = True
        pending[system] = t
        if label:
            transition[system] = label
        t.start()


def apply_reset(system, reset_type, ctl):
    with open(os.path.join(DIR, system + ".resets"), "a") as f:
        f.write(reset_type + "\n")
    if reset_type in ("ForceOff", "GracefulShutdown"):
        later(system, int(ctl.get("off_delay_ms", 0)), "PoweringOff", lambda: stop_node(system))
    elif reset_type in ("On", "ForceOn"):
        # With no on_delay_ms the node is started before the answer, as ForceOff's is killed: the
        # service switches at once.  (The sushy failures once blamed on starting it here were the
        # Connection: close race, see send_json.)
        later(system, int(ctl.get("on_delay_ms", 0)), "PoweringOn", lambda: start_node(system))
    elif reset_type == "PushPowerButton":
        if node_pid(system):
            later(system, int(ctl.get("off_delay_ms", 0)), "PoweringOff", lambda: stop_node(system))
        else:
            later(system, int(ctl.get("on_delay_ms", 0)), "PoweringOn", lambda: start_node(system))
    elif reset_type in ("ForceRestart", "GracefulRestart", "PowerCycle"):
        with lock:
            stop_node(system)
        later(system, max(1, int(ctl.get("restart_off_ms", 500))), "", lambda: start_node(system))
    elif reset_type == "Nmi":
        pass  # recorded in S.resets above


def error_body(code, message):
    return {"error": {"code": "Base.1.8." + code, "message": message,
                      "@Message.ExtendedInfo": [{"MessageId": "Base.1.8." + code, "Message": message}]}}


def system_resource(system, ctl):
    uri = "%s/Systems/%s" % (ROOT, system)
    action = {"target": uri + "/Actions/ComputerSystem.Reset"}
    allowed = CONFIG.get("allowable", ALL_RESET_TYPES)
    if CONFIG.get("action_info"):
        action["@Redfish.ActionInfo"] = uri + "/ResetActionInfo"
    else:
        action["ResetType@Redfish.AllowableValues"] = allowed
    return {
        "@odata.id": uri, "@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem",
        "@odata.context": ROOT + "/$metadata#ComputerSystem.ComputerSystem",
        "Id": system, "Name": "System " + system, "SystemType": "Physical",
        "Manufacturer": "stockade", "Model": "redfish_service.py", "SerialNumber": "SN-" + system,
        "UUID": "00000000-0000-4000-8000-%012d" % (abs(hash(system)) % 10**12),
        "PowerState": power_state(system),
        "Status": {"State": "Enabled", "Health": "OK"},
        "Boot": {"BootSourceOverrideEnabled": "Disabled", "BootSourceOverrideTarget": "None",
                 "BootSourceOverrideMode": "UEFI",
                 "BootSourceOverrideTarget@Redfish.AllowableValues": ["None", "Pxe", "Hdd", "Cd"]},
        "Actions": {"#ComputerSystem.Reset": action},
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60
    # One write per answer (headers + body), sent at once: no Nagle/delayed-ACK stall of 40 ms.
    wbufsize = 65536
    server_version = "stockade-redfish-test/1.0"

    def setup(self):
        with lock:
            conn_counter[0] += 1
            self.conn_id = conn_counter[0]
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError) as e:
            log("%d TLS-FAILED %s" % (self.conn_id, e.__class__.__name__))
            raise
        log("%d CONNECT" % self.conn_id)
        super().setup()

    def log_message(self, *args):
        pass

    # ---- plumbing -----------------------------------------------------------------------------
    def send_json(self, status, body=None, headers=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("OData-Version", "4.0")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection and not getattr(self, "silent_close", False):
            # The client asked to close ("Connection: close", as python3-sushy sends on every
            # request, or HTTP/1.0): say so in the answer (RFC 9112 9.6).  BaseHTTPRequestHandler
            # closes without saying it, and then urllib3 puts the connection back in its pool and
            # sends the next request on it unless our FIN has already arrived -- a race that lost
            # about one sushy run in three ("RemoteDisconnected") on a busy machine.
            self.send_header("Connection", "close")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if data:
            self.wfile.write(data)
        log("%d %s %s auth=%s -> %d" % (self.conn_id, self.command, self.path, self.auth_label, status))

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return None

    def authenticate(self):
        """Returns the user name, or None (and the caller answers 401)."""
        token = self.headers.get("X-Auth-Token")
        if token:
            with lock:
                for sid, s in sessions.items():
                    if secrets.compare_digest(s["token"], token):
                        self.auth_label = "token:" + sid
                        return s["user"]
            self.auth_label = "bad-token"
            return None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return None
            self.auth_label = "basic:" + user
            u = USERS.get(user)
            if u and secrets.compare_digest(u["password"], password):
                return user
        return None

    def save_sessions(self):
        with lock:
            with open(os.path.join(DIR, "sessions.json.tmp"), "w") as f:
                json.dump({sid: {"user": s["user"]} for sid, s in sessions.items()}, f)
            os.replace(os.path.join(DIR, "sessions.json.tmp"), os.path.join(DIR, "sessions.json"))

    # ---- dispatch -----------------------------------------------------------------------------
    def handle_any(self):
        self.auth_label = "none"
        ctl = control()
        body = self.read_body() if self.command in ("POST", "PATCH") else {}
        fault = str(ctl.get("fault", "none"))
        if fault == "hang":
            log("%d %s %s HANG" % (self.conn_id, self.command, self.path))
            while control().get("fault") == "hang":
                time.sleep(0.05)
        if ctl.get("delay_ms"):
            time.sleep(int(ctl["delay_ms"]) / 1000.0)
        if ctl.get("drop_idle"):
            # A BMC with a very short keep-alive: it closes the connection after each answer
            # without saying so (no Connection: close); the client finds out on its next request.
            self.close_connection = True
            self.silent_close = True
        if fault == "503":
            with lock:
                left = ctl.get("fail_count")
                if left is None or int(left) > 0:
                    if left is not None:
                        ctl["fail_count"] = int(left) - 1
                        with open(os.path.join(DIR, "control.json"), "w") as f:
                            json.dump(ctl, f)
                    return self.send_json(503, error_body("ServiceTemporarilyUnavailable", "BMC busy"),
                                          {"Retry-After": "1"})
        path = self.path.split("?")[0].rstrip("/") or "/"
        public = (self.command == "GET" and path in (ROOT, "/redfish")) or \
                 (self.command == "POST" and path == ROOT + "/SessionService/Sessions")
        user = None
        if not public:
            user = self.authenticate()
            if user is None or fault == "401":
                return self.send_json(401, error_body("NoValidSession", "authentication required"),
                                      {"WWW-Authenticate": 'Basic realm="redfish"'})
        if self.command == "GET":
            return self.do_get(path, ctl)
        if self.command == "POST":
            return self.do_post(path, body, user, ctl)
        if self.command == "DELETE":
            return self.do_delete(path)
        return self.send_json(405, error_body("OperationNotAllowed", "method not allowed"))

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_DELETE(self):
        self.handle_any()

    def do_PATCH(self):
        self.handle_any()

    def do_get(self, path, ctl):
        if path == "/redfish":
            return self.send_json(200, {"v1": ROOT + "/"})
        if path == ROOT:
            return self.send_json(200, {
                "@odata.id": ROOT, "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot", "Id": "RootService",
                "Name": "stockade test Redfish service", "RedfishVersion": "1.6.0",
                "UUID": "92384634-2938-2342-8820-489239905423",
                "Systems": {"@odata.id": SYSTEMS_COLLECTION},
                "SessionService": {"@odata.id": ROOT + "/SessionService"},
                "TaskService": {"@odata.id": ROOT + "/TaskService"},
                "Links": {"Sessions": {"@odata.id": ROOT + "/SessionService/Sessions"}}})
        if path == SYSTEMS_COLLECTION:
            return self.send_json(200, {
                "@odata.id": path, "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
                "Name": "Computer System Collection", "Members@odata.count": len(SYSTEMS),
                "Members": [{"@odata.id": "%s/Systems/%s" % (ROOT, s)} for s in SYSTEMS]})
        for s in SYSTEMS:
            if path == "%s/Systems/%s" % (ROOT, s):
                return self.send_json(200, system_resource(s, ctl))
            if path == "%s/Systems/%s/ResetActionInfo" % (ROOT, s):
                return self.send_json(200, {
                    "@odata.id": path, "@odata.type": "#ActionInfo.v1_1_2.ActionInfo", "Id": "ResetActionInfo",
                    "Name": "Reset Action Info",
                    "Parameters": [{"Name": "ResetType", "Required": True, "DataType": "String",
                                    "AllowableValues": CONFIG.get("allowable", ALL_RESET_TYPES)}]})
        if path == ROOT + "/SessionService":
            return self.send_json(200, {
                "@odata.id": path, "@odata.type": "#SessionService.v1_1_8.SessionService", "Id": "SessionService",
                "Name": "Session Service", "ServiceEnabled": True, "SessionTimeout": 1800,
                "Sessions": {"@odata.id": path + "/Sessions"}})
        if path == ROOT + "/SessionService/Sessions":
            with lock:
                ids = sorted(sessions)
            return self.send_json(200, {
                "@odata.id": path, "@odata.type": "#SessionCollection.SessionCollection", "Name": "Sessions",
                "Members@odata.count": len(ids), "Members": [{"@odata.id": path + "/" + i} for i in ids]})
        if path.startswith(ROOT + "/SessionService/Sessions/"):
            sid = path.rsplit("/", 1)[1]
            with lock:
                s = sessions.get(sid)
            if not s:
                return self.send_json(404, error_body("ResourceMissingAtURI", "no session " + sid))
            return self.send_json(200, {"@odata.id": path, "@odata.type": "#Session.v1_3_0.Session", "Id": sid,
                                        "Name": "Session " + sid, "UserName": s["user"]})
        if path == ROOT + "/TaskService":
            return self.send_json(200, {"@odata.id": path, "@odata.type": "#TaskService.v1_1_5.TaskService",
                                        "Id": "TaskService", "Name": "Task Service", "ServiceEnabled": True,
                                        "Tasks": {"@odata.id": path + "/Tasks"}})
        if path.startswith(ROOT + "/TaskService/Tasks/"):
            tid = path.split("/")[5]
            with lock:
                t = tasks.get(tid)
            if not t:
                return self.send_json(404, error_body("ResourceMissingAtURI", "no task " + tid))
            done = time.monotonic() >= t["done_at"]
            task = {"@odata.id": ROOT + "/TaskService/Tasks/" + tid, "@odata.type": "#Task.v1_4_3.Task",
                    "Id": tid, "Name": "Reset", "TaskState": t["final"] if done else "Running",
                    "TaskStatus": "OK" if done and t["final"] == "Completed" else "Warning",
                    "Messages": [] if t["final"] == "Completed" else [{"Message": "reset failed in the BMC"}]}
            if path.endswith("/Monitor") and not done:
                return self.send_json(202, task, {"Location": ROOT + "/TaskService/Tasks/%s/Monitor" % tid})
            return self.send_json(200, task)
        return self.send_json(404, error_body("ResourceMissingAtURI", "no resource " + path))

    def do_post(self, path, body, user, ctl):
        if body is None:
            return self.send_json(400, error_body("MalformedJSON", "the body is not JSON"))
        if path == ROOT + "/SessionService/Sessions":
            u = USERS.get(str(body.get("UserName", "")))
            if not u or not secrets.compare_digest(u["password"], str(body.get("Password", ""))) \
                    or ctl.get("fault") == "401":
                return self.send_json(401, error_body("NoValidSession", "invalid user name or password"))
            with lock:
                sid = str(len(sessions) + 1)
                while sid in sessions:
                    sid = str(int(sid) + 1)
                token = secrets.token_hex(16)
                sessions[sid] = {"token": token, "user": u["name"]}
            self.save_sessions()
            self.auth_label = "login:" + u["name"]
            uri = ROOT + "/SessionService/Sessions/" + sid
            return self.send_json(201, {"@odata.id": uri, "@odata.type": "#Session.v1_3_0.Session", "Id": sid,
                                        "Name": "Session " + sid, "UserName": u["name"]},
                                  {"X-Auth-Token": token, "Location": uri})
        for s in SYSTEMS:
            if path == "%s/Systems/%s/Actions/ComputerSystem.Reset" % (ROOT, s):
                if USERS.get(user, {}).get("role") == "ReadOnly" or ctl.get("fault") == "403":
                    return self.send_json(403, error_body("InsufficientPrivilege",
                                                          "user %s may not reset systems" % user))
                rt = body.get("ResetType")
                if rt not in CONFIG.get("allowable", ALL_RESET_TYPES):
                    return self.send_json(400, error_body("ActionParameterNotSupported",
                                                          "ResetType %r is not supported" % rt))
                fault = ctl.get("fault")
                if fault == "stuck":
                    with open(os.path.join(DIR, s + ".resets"), "a") as f:
                        f.write(rt + " (ignored)\n")
                    return self.send_json(204)
                if fault in ("task", "task-fails"):
                    with lock:
                        task_counter[0] += 1
                        tid = str(task_counter[0])
                        delay = int(ctl.get("task_ms", 300))
                        tasks[tid] = {"done_at": time.monotonic() + delay / 1000.0,
                                      "final": "Completed" if fault == "task" else "Exception"}
                    if fault == "task":
                        later(s, delay, "", lambda: apply_reset(s, rt, ctl))
                    mon = ROOT + "/TaskService/Tasks/%s/Monitor" % tid
                    return self.send_json(202, {"@odata.id": ROOT + "/TaskService/Tasks/" + tid,
                                                "@odata.type": "#Task.v1_4_3.Task", "Id": tid,
                                                "TaskState": "Running"}, {"Location": mon})
                apply_reset(s, rt, ctl)
                return self.send_json(204)
        return self.send_json(404, error_body("ResourceMissingAtURI", "no action " + path))

    def do_delete(self, path):
        if path.startswith(ROOT + "/SessionService/Sessions/"):
            sid = path.rsplit("/", 1)[1]
            with lock:
                gone = sessions.pop(sid, None)
            if not gone:
                return self.send_json(404, error_body("ResourceMissingAtURI", "no session " + sid))
            self.save_sessions()
            return self.send_json(204)
        return self.send_json(405, error_body("OperationNotAllowed", "cannot delete " + path))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def main():
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps dead nodes (no reaper thread)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CONFIG["cert"], CONFIG["key"])
    # No TLS 1.3 session tickets: sent after the handshake, they make an idle kept-alive connection
    # readable, and urllib3 (sushy, fence_redfish) then takes it for closed.
    ctx.num_tickets = 0
    srv = Server((CONFIG.get("address", "127.0.0.1"), int(CONFIG["port"])), Handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    with open(os.path.join(DIR, "service.pid"), "w") as f:
        f.write(str(os.getpid()))
    for s in SYSTEMS:
        if s in CONFIG.get("initially_on", SYSTEMS):
            start_node(s)
    signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with open(os.path.join(DIR, "ready"), "w") as f:
        f.write("%d\n" % CONFIG["port"])
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    for s in SYSTEMS:
        stop_node(s)


if __name__ == "__main__":
    main()
