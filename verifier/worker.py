"""A gunicorn worker for an upstream that only nginx talks to: one thread per connection.

Why not gunicorn's ``gthread``: for every request on a kept-alive connection it
hands the socket from its poller thread to a pool thread and back (unregister,
``submit``, a future callback, a pipe wake-up, re-register). On the 2-core
bench machine that hand-off measured ~300 µs of CPU per request, about as much
as the verifier's whole decision path (``bench/README.md``). nginx keeps its
upstream connections alive (``keepalive`` in the ``upstream`` block), so a
thread that owns one connection and reads request after request from it needs
none of that: per request it is gunicorn's own parser, ``wsgi.create`` and the
app, nothing else.

Use: ``gunicorn --worker-class verifier.worker.KeepAliveWorker``.

Bounds
  * at most ``--worker-connections`` connections per worker, each one thread;
    more wait in the listen backlog (as with ``gthread``);
  * a connection idle for ``--keep-alive`` seconds is closed;
  * gunicorn's request limits (line, header count and size) apply: the parser
    is gunicorn's.

Stopping (reload with HUP, TERM, ``--max-requests``): no new connection is
accepted; a request in progress is finished and answered with
``Connection: close``; an idle connection is kept ``STOP_LINGER_SECONDS`` so
that a request nginx already sent on it is still answered, then shut down.
nginx retries a request whose cached keep-alive connection was closed under it
on a new connection, so a reload fails no request (``tests/integration``
rotates the client CA, which reloads the verifier, under load).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
import time
from datetime import datetime

from gunicorn import http, util
from gunicorn.http import wsgi
from gunicorn.workers.sync import SyncWorker

STOP_LINGER_SECONDS = 2.0  # idle connections kept while stopping (gthread uses 2 s too)
_POLL_SECONDS = 0.05
_QUIET_ERRNOS = (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.EBADF)


class KeepAliveWorker(SyncWorker):
    """gunicorn's sync worker, but each accepted connection gets a thread and stays open."""

    def init_process(self) -> None:
        self._lock = threading.Lock()
        self._busy: dict[socket.socket, bool] = {}  # open connection -> in a request now
        self._slots = threading.BoundedSemaphore(self.cfg.worker_connections)
        super().init_process()

    # --- the main thread: accept, heartbeat, stop -------------------------------------

    def accept(self, listener: socket.socket) -> None:
        if not self._slots.acquire(timeout=0.5):
            return  # every slot busy: the connection waits in the backlog
        try:
            client, addr = listener.accept()
        except BaseException:
            self._slots.release()
            raise
        client.setblocking(True)
        util.close_on_exec(client)
        with self._lock:
            self._busy[client] = False
        thread = threading.Thread(
            target=self._serve, args=(listener, client, addr), name="conn", daemon=True
        )
        thread.start()

    def run(self) -> None:
        super().run()  # returns once self.alive is False (signal or max-requests)
        self._drain()

    def _drain(self) -> None:
        """Finish requests in progress; answer or close idle connections; bounded."""
        started = time.monotonic()
        deadline = started + self.cfg.graceful_timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._busy:
                    return
                idle = [conn for conn, busy in self._busy.items() if not busy]
            if time.monotonic() - started >= STOP_LINGER_SECONDS:
                for conn in idle:
                    _shutdown(conn)  # its thread's read returns; the thread closes it
            self.notify()
            time.sleep(_POLL_SECONDS)

    # --- one thread per connection -----------------------------------------------------

    def _serve(self, listener: socket.socket, client: socket.socket, addr) -> None:
        req = None
        try:
            client.settimeout(self.cfg.keepalive or None)
            parser = http.get_parser(self.cfg, client, addr)
            for req in parser:
                self._set_busy(client, True)
                keep = self._handle(listener, req, client, addr)
                self._set_busy(client, False)
                if not keep or not self.alive:
                    break
        except (TimeoutError, StopIteration, http.errors.NoMoreData):
            pass  # idle past keep-alive, or the peer closed: nothing to answer
        except OSError as e:
            if e.errno not in _QUIET_ERRNOS:
                self.log.exception("Socket error processing request.")
        except Exception as e:
            self.handle_error(req, client, addr, e)
        finally:
            with self._lock:
                self._busy.pop(client, None)
            util.close(client)
            self._slots.release()

    def _set_busy(self, client: socket.socket, busy: bool) -> None:
        with self._lock:
            self._busy[client] = busy

    def _handle(self, listener: socket.socket, req, client: socket.socket, addr) -> bool:
        """One request, as gunicorn's gthread worker runs it; True = keep the connection."""
        environ: dict = {}
        resp = None
        try:
            self.cfg.pre_request(self, req)
            request_start = datetime.now()
            resp, environ = wsgi.create(req, client, addr, listener.getsockname(), self.cfg)
            environ["wsgi.multithread"] = True
            with self._lock:
                self.nr += 1
                if self.nr >= self.max_requests and self.alive:
                    self.log.info("Autorestarting worker after current request.")
                    self.alive = False
            if not self.alive or not self.cfg.keepalive:
                resp.force_close()
            respiter = self.wsgi(environ, resp.start_response)
            if not self.alive:  # told to stop while the app ran: headers are not sent yet
                resp.force_close()
            try:
                if isinstance(respiter, environ["wsgi.file_wrapper"]):
                    resp.write_file(respiter)
                else:
                    for item in respiter:
                        resp.write(item)
                resp.close()
            finally:
                self.log.access(resp, req, environ, datetime.now() - request_start)
                if hasattr(respiter, "close"):
                    respiter.close()
            return not resp.should_close()
        except OSError:
            raise
        except Exception:
            if resp and resp.headers_sent:
                # Half a response is on the wire: nothing sane can follow it.
                self.log.exception("Error handling request")
                return False
            raise
        finally:
            try:
                self.cfg.post_request(self, req, environ, resp)
            except Exception:
                self.log.exception("Exception in post_request hook")


def _shutdown(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by its thread
        conn.shutdown(socket.SHUT_RDWR)
