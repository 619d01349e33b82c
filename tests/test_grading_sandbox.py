"""The grading sandbox holds hostile code: each test runs a small Python snippet inside.

Real sandboxes need bubblewrap (Debian ``bubblewrap``, installed by ``make system-deps``):
without it these tests skip on a laptop and fail on CI (``$CI`` set). They never send
traffic anywhere but the host's own loopback, and each takes a few seconds at most.
"""

from __future__ import annotations

import glob
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from cnn_course.grading import sandbox as sandbox_module
from cnn_course.grading.sandbox import (
    SCRATCH_INSIDE,
    Limits,
    Sandbox,
    SandboxUnavailable,
    inert_stubs,
    sandbox_status,
)
from conftest import require_sandbox

REPO = Path(__file__).resolve().parents[1]
FAST = Limits(wall_seconds=30, memory_bytes=1024**3, max_processes=64)


@pytest.fixture(scope="module")
def bwrap():
    require_sandbox()


def run(code: str, scratch: Path, limits: Limits = FAST, timeout: float = 30, **options):
    """Run ``code`` with this Python inside a new sandbox; the ended process."""
    scratch.mkdir(parents=True, exist_ok=True)
    with Sandbox(scratch=scratch, limits=limits, **options) as sandbox:
        process = sandbox.start([sys.executable, "-c", textwrap.dedent(code)])
        assert process.wait(timeout=timeout) is not None, "the sandbox did not end in time"
        return process


def printed_json(process):
    """The JSON object on the last line of the process's stdout."""
    assert process.stdout, process.output.decode(errors="replace")
    return json.loads(process.stdout.decode().strip().splitlines()[-1])


def processes_with(token: str) -> list[int]:
    """Host processes whose command line contains ``token``."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                if token.encode() in cmdline.read():
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


# --- who and where the code is --------------------------------------------------------------


def test_status_says_why():
    available, description = sandbox_status()
    assert isinstance(available, bool) and len(description) > 20
    assert sandbox_status() is sandbox_status()  # tried once, then remembered


def test_own_user_no_network_interface_but_loopback(bwrap, tmp_path):
    process = run("""
        import json, os, socket
        with open("/proc/net/dev") as dev:
            interfaces = [line.split(":")[0].strip() for line in dev.readlines()[2:]]
        print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(),
                          "names": [name for _index, name in socket.if_nameindex()],
                          "proc_net_dev": interfaces, "cwd": os.getcwd(), "home": os.environ["HOME"],
                          "pid": os.getpid(), "processes": sorted(int(e) for e in os.listdir("/proc") if e.isdigit())}))
    """, tmp_path / "scratch")
    seen = printed_json(process)
    assert process.returncode == 0 and process.killed_reason is None
    assert seen["uid"] != 0 and seen["euid"] != 0 and seen["gid"] != 0
    assert seen["names"] == ["lo"] and seen["proc_net_dev"] == ["lo"]
    assert seen["cwd"] == seen["home"] == SCRATCH_INSIDE
    # Its own PID namespace: only bwrap's first process and itself.
    assert seen["processes"] == [1, seen["pid"]]


def test_server_on_host_loopback_is_unreachable(bwrap, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        server.settimeout(0.2)
        process = run(f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
                print("connected")
            except OSError as error:
                print(type(error).__name__)
        """, tmp_path / "scratch")
        with pytest.raises(TimeoutError):
            server.accept()  # nobody knocked
    assert process.stdout.strip() == b"ConnectionRefusedError"  # its own loopback, with no server


# --- files ----------------------------------------------------------------------------------


def test_course_gradebook_and_classmates_are_out_of_reach(bwrap, tmp_path):
    course = tmp_path / "course"
    (course / "submitted" / "bob" / "ps1").mkdir(parents=True)
    (course / "submitted" / "bob" / "ps1" / "ps1.ipynb").write_text("bob's answers")
    (course / "gradebook.db").write_text("grades")
    secrets = [course / "gradebook.db", course / "submitted" / "bob" / "ps1" / "ps1.ipynb",
               REPO / "solutions", REPO / "nbgrader_config.py", REPO / "tests", REPO / ".git",
               Path.home() / ".bash_history", Path(tempfile.gettempdir())]
    process = run(f"""
        import json, os
        secrets = {[str(path) for path in secrets]!r} + ["../../../../solutions", "../gradebook.db"]
        seen = {{}}
        for path in secrets:
            try:
                seen[path] = os.listdir(path) if os.path.isdir(path) else open(path).read()
            except OSError as error:
                seen[path] = type(error).__name__
        repo_listing = os.listdir({str(REPO)!r}) if os.path.isdir({str(REPO)!r}) else []
        print(json.dumps({{"seen": seen, "repo": repo_listing}}))
    """, course / "autograde-scratch" / "alice")
    result = printed_json(process)
    tmp = Path(tempfile.gettempdir()).resolve()
    tmp_inside = result["seen"].pop(str(Path(tempfile.gettempdir())))
    # /tmp is its own: empty, but for the way to the read-only environment when that lies under
    # /tmp (a clone in /tmp/<name>: only <name>, whose listing is checked below).
    way_in = {path.relative_to(tmp).parts[0] for path in (Path(sys.prefix).resolve(), REPO.resolve())
              if path.is_relative_to(tmp) and path != tmp}
    assert tmp_inside == "FileNotFoundError" or set(tmp_inside) <= way_in, (tmp_inside, way_in)
    assert set(result["seen"].values()) == {"FileNotFoundError"}, result["seen"]
    # Of the repository only what Python needs: the virtual environment and the package source.
    assert set(result["repo"]) <= {".venv", "utils"}, result["repo"]


def test_writes_outside_scratch_fail(bwrap, tmp_path):
    token = uuid.uuid4().hex
    targets = ["/x", "/etc/x", "/usr/x", "/dev/x", "/opt/x", "/proc/x", "/home/x",
               os.path.join(sys.prefix, token), str(REPO / "utils" / "src" / token)]
    process = run(f"""
        import json
        results = {{}}
        for path in {targets!r} + ["inside-scratch", "/tmp/inside-tmp"]:
            try:
                with open(path, "w") as file:
                    file.write("x")
                results[path] = "written"
            except OSError as error:
                results[path] = type(error).__name__
        print(json.dumps(results))
    """, tmp_path / "scratch")
    results = printed_json(process)
    assert results.pop("inside-scratch") == "written" and results.pop("/tmp/inside-tmp") == "written"
    assert "written" not in results.values(), results
    assert (tmp_path / "scratch" / "inside-scratch").read_text() == "x"
    assert not os.path.exists(os.path.join(sys.prefix, token))
    assert not (REPO / "utils" / "src" / token).exists()


# --- limits ---------------------------------------------------------------------------------


def test_limits_are_set_inside(bwrap, tmp_path):
    limits = Limits(wall_seconds=30, memory_bytes=2 * 1024**3, max_processes=50, max_file_bytes=1024**2)
    process = run("""
        import json, resource
        names = ("RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_CORE")
        limits = {name: resource.getrlimit(getattr(resource, name)) for name in names}
        try:
            with open("big", "wb") as file:
                file.write(b"x" * (2 * 1024**2))
            limits["big file"] = "written"
        except OSError as error:
            limits["big file"] = type(error).__name__ + " " + str(error.errno)
        print(json.dumps(limits))
    """, tmp_path / "scratch", limits=limits)
    seen = printed_json(process)
    assert seen["RLIMIT_AS"] == [limits.memory_bytes] * 2
    assert seen["RLIMIT_NPROC"] == [limits.max_processes] * 2
    assert seen["RLIMIT_FSIZE"] == [limits.max_file_bytes] * 2
    assert seen["RLIMIT_CORE"] == [0, 0]
    assert seen["big file"] == "OSError 27"  # EFBIG: File too large


def test_fork_bomb_is_contained(bwrap, tmp_path):
    token = uuid.uuid4().hex
    limits = Limits(wall_seconds=20, max_processes=40)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with Sandbox(scratch=scratch, limits=limits) as sandbox:
        process = sandbox.start([sys.executable, "-c", textwrap.dedent(f"""
            # {token}
            import os, time
            first = os.getpid()
            until = time.monotonic() + 1.0
            while time.monotonic() < until:
                try:
                    os.fork()
                except OSError:
                    break  # at the limit: stay alive, stop trying
            if os.getpid() == first:
                time.sleep(max(0.0, until - time.monotonic()))
                print(sum(1 for entry in os.listdir("/proc") if entry.isdigit()), flush=True)
                os.read(3, 1)  # until the host has looked
                os._exit(0)
            time.sleep(60)
        """)])
        while not process.stdout and process.returncode is None:
            time.sleep(0.1)
        # The host still starts processes while the bomb is at its limit.
        assert subprocess.run([sys.executable, "-c", "print('host ok')"], capture_output=True,
                              timeout=30).stdout == b"host ok\n"
        process.channel_in.write(b"x")
        process.channel_in.flush()
        assert process.wait(timeout=30) == 0
    running_inside = int(process.stdout)
    assert limits.max_processes // 2 <= running_inside <= limits.max_processes + 1  # + bwrap's first process
    assert processes_with(token) == []  # the first process ended: all the others with it


def test_memory_bomb_is_stopped(bwrap, tmp_path):
    limits = Limits(wall_seconds=20, memory_bytes=512 * 1024**2)
    # One process asking for 30 GB: refused by the address-space limit.
    single = run("bytes_ = bytearray(30 * 1024**3)", tmp_path / "one", limits=limits)
    assert single.returncode == 1 and b"MemoryError" in single.stderr
    # Four processes of 200 MB each: each under the per-process limit, killed together.
    started = time.monotonic()
    spread = run("""
        import os, time
        for _ in range(3):
            if os.fork() == 0:
                break
        block = b"x" * (200 * 1024**2)
        time.sleep(60)
    """, tmp_path / "four", limits=limits)
    assert spread.killed_reason == "memory" and spread.returncode == -9
    assert time.monotonic() - started < 10
    # Pages shared after fork count once: 200 MB seen by four processes is 200 MB.
    shared = run("""
        import os, time
        block = b"x" * (200 * 1024**2)
        children = 0
        for _ in range(3):
            if os.fork() == 0:
                break  # a child: holds the shared copy
            children += 1
        time.sleep(1.5)
        if children == 3:
            print("survived", flush=True)
    """, tmp_path / "shared", limits=limits)
    assert shared.killed_reason is None and shared.stdout == b"survived\n"
    # Memory files that nobody maps (memfd_create) count too.
    unmapped = run("""
        import os, time
        held = []
        for _ in range(4):
            held.append(os.memfd_create("block"))
            os.write(held[-1], b"x" * (200 * 1024**2))
        time.sleep(60)
    """, tmp_path / "memfd", limits=limits)
    assert unmapped.killed_reason == "memory"


def test_no_user_namespace_of_its_own(bwrap, tmp_path):
    # In one the code could mount a tmpfs whose memory nothing counts. Unprivileged callers'
    # sandboxes forbid them (bwrap --disable-userns); root's are killed when one appears.
    process = run("""
        import subprocess, time
        made = subprocess.run(["unshare", "--user", "sleep", "5"], capture_output=True)
        print(made.returncode, flush=True)
        time.sleep(5)
    """, tmp_path / "scratch")
    if os.geteuid() == 0:
        assert process.killed_reason == "user namespace"
    else:
        assert process.stdout.split() == [b"1"], process.output


def test_infinite_loop_is_killed_at_wall_time(bwrap, tmp_path):
    started = time.monotonic()
    process = run("while True: pass", tmp_path / "scratch", limits=Limits(wall_seconds=1.5))
    took = time.monotonic() - started
    assert process.killed_reason == "wall time" and process.returncode == -9
    assert 1.5 <= took < 5


def test_detached_process_ends_with_the_sandbox(bwrap, tmp_path):
    token = uuid.uuid4().hex
    scratch = tmp_path / "scratch"
    process = run(f"""
        # {token}
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:  # the daemon: keeps touching a file in the scratch folder
                while True:
                    with open("alive", "w") as marker:
                        marker.write(str(time.monotonic()))
                    time.sleep(0.05)
            os._exit(0)
        while not os.path.exists("alive"):
            time.sleep(0.01)
        print("detached")
    """, scratch)
    assert process.stdout == b"detached\n" and process.returncode == 0
    last = (scratch / "alive").read_text()
    time.sleep(0.5)
    assert (scratch / "alive").read_text() == last  # nobody touches it any more
    assert processes_with(token) == []


def test_output_is_capped(bwrap, tmp_path):
    limits = Limits(wall_seconds=30, max_output_bytes=1024**2)
    started = time.monotonic()
    process = run("""
        import sys
        for _ in range(100):
            sys.stdout.buffer.write(b"x" * 1024**2)
    """, tmp_path / "scratch", limits=limits)
    assert len(process.output) == limits.max_output_bytes and set(process.output) == {ord("x")}
    assert process.output_truncated and process.killed_reason == "output"
    assert time.monotonic() - started < 10


def test_stdout_and_stderr_are_kept_apart(bwrap, tmp_path):
    process = run("""
        import sys
        print("to stdout", flush=True)
        print("to stderr", file=sys.stderr, flush=True)
    """, tmp_path / "scratch")
    assert process.stdout == b"to stdout\n" and process.stderr == b"to stderr\n"
    assert sorted(process.output.splitlines()) == [b"to stderr", b"to stdout"]
    assert not process.output_truncated


def test_exit_status_and_segfault_are_reported(bwrap, tmp_path):
    exited = run("import os; os._exit(3)", tmp_path / "exit")
    assert exited.returncode == 3 and exited.killed_reason is None
    crashed = run("import ctypes; ctypes.string_at(0)", tmp_path / "segfault")
    assert crashed.returncode == -11 and crashed.killed_reason is None  # SIGSEGV
    assert not list((tmp_path / "segfault").iterdir())  # no core dump


# --- stubbed packages -----------------------------------------------------------------------


def test_stubbed_scipy_imports_but_cannot_be_used_or_reached(bwrap, tmp_path):
    scipy = pytest.importorskip("scipy")
    scipy_folder = Path(scipy.__file__).parent
    compiled = glob.glob(str(scipy_folder / "signal" / "_sigtools*.so"))
    assert compiled, "scipy's compiled _sigtools module was not found on the host"
    libs = sorted(scipy_folder.parent.glob("scipy.libs/*"))
    process = run(f"""
        import ctypes, json, os
        import scipy, scipy.signal
        from scipy.signal import convolve2d
        from skimage import data
        results = {{}}
        for name, use in [("call", lambda: convolve2d([[1]], [[1]])), ("skimage", lambda: data.camera()),
                          ("index", lambda: scipy.signal.windows[0]), ("iterate", lambda: list(scipy.ndimage)),
                          ("arithmetic", lambda: scipy.pi * 2)]:
            try:
                use()
                results[name] = "worked"
            except RuntimeError as error:
                results[name] = str(error)
        for path in {compiled + [str(path) for path in libs]!r}:
            for how, open_ in [("open", lambda p: open(p, "rb").read(1)), ("dlopen", ctypes.CDLL)]:
                try:
                    open_(path)
                    results[how + " " + path] = "opened"
                except OSError as error:
                    results[how + " " + path] = "blocked"
        results["scipy folder"] = sorted(os.listdir(os.path.dirname(scipy.__file__)))
        print(json.dumps(results))
    """, tmp_path / "scratch", stub_packages=inert_stubs(["scipy", "skimage"]))
    results = printed_json(process)
    assert results.pop("call") == ("scipy is not available while this problem set is graded "
                                   "(scipy.signal.convolve2d cannot be used)")
    assert results.pop("skimage").startswith("skimage is not available while this problem set is graded")
    for use in ("index", "iterate", "arithmetic"):
        assert results.pop(use).startswith("scipy is not available"), use
    assert set(results.pop("scipy folder")) - {"__pycache__"} == {"__init__.py"}  # the stand-in only
    assert set(results.values()) == {"blocked"} and len(results) == 2 * (len(compiled) + len(libs)), results


def test_stubbed_course_package_hides_its_source(bwrap, tmp_path):
    import cnn_course

    process = run("""
        import json, os
        import cnn_course, cnn_course.conv
        try:
            cnn_course.conv.correlate2d([[1]], [[1]])
            used = "worked"
        except RuntimeError as error:
            used = str(error)
        print(json.dumps({"used": used, "files": os.listdir(os.path.dirname(cnn_course.__file__))}))
    """, tmp_path / "scratch", stub_packages=inert_stubs(["cnn_course"]))
    seen = printed_json(process)
    assert seen["used"].startswith("cnn_course is not available while this problem set is graded")
    assert set(seen["files"]) - {"__pycache__"} == {"__init__.py"}
    # Unstubbed, the package's public source is there (read-only) and imports.
    plain = run("import cnn_course.conv; print(cnn_course.__file__)", tmp_path / "plain")
    assert plain.stdout.decode().strip() == cnn_course.__file__


# --- the channel ----------------------------------------------------------------------------


def test_channel_works_both_ways(bwrap, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with Sandbox(scratch=scratch, limits=FAST) as sandbox:
        process = sandbox.start([sys.executable, "-c", textwrap.dedent("""
            import os
            assert os.environ["CNN_COURSE_GRADING_CHANNEL"] == "3,4"
            with open(3, "rb") as requests, open(4, "wb") as replies:
                for line in requests:
                    replies.write(line.upper())
                    replies.flush()
        """)])
        for word in (b"hello\n", b"again\n"):
            process.channel_in.write(word)
            process.channel_in.flush()
            assert process.channel_out.readline() == word.upper()
        process.channel_in.close()  # end of requests: the child finishes
        assert process.wait(timeout=30) == 0, process.output
        assert process.channel_out.read() == b""


# --- the same API without a sandbox, and from an unprivileged caller -------------------------


def test_unsafe_no_sandbox_keeps_the_api(tmp_path):
    helper = tmp_path / "helper.py"
    helper.write_text("import os, resource, sys\n"
                      "print(os.environ['CNN_COURSE_GRADING_CHANNEL'], resource.getrlimit(resource.RLIMIT_AS)[0],\n"
                      "      resource.getrlimit(resource.RLIMIT_NPROC)[0])\n"
                      "os.write(4, os.read(3, 5))\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    limits = Limits(wall_seconds=30, memory_bytes=1024**3)
    with Sandbox(scratch=scratch, limits=limits, binds=[(helper, "/opt/helper/helper.py")],
                 unsafe_no_sandbox=True) as sandbox:
        process = sandbox.start([sys.executable, "/opt/helper/helper.py"])  # path as seen inside
        process.channel_in.write(b"ping!")
        process.channel_in.flush()
        assert process.channel_out.read(5) == b"ping!"
        assert process.wait(timeout=30) == 0, process.output
        # The process limit is left as it was: without a namespace it would count all the user's processes.
        host_nproc = resource.getrlimit(resource.RLIMIT_NPROC)[0]
        assert process.stdout == f"3,4 {limits.memory_bytes} {host_nproc}\n".encode()
        looping = sandbox.start([sys.executable, "-c", "while True: pass"])
        looping.kill()
        assert looping.wait(timeout=10) == -9 and looping.killed_reason == "killed"
    # Stubs come first on the path (the real package stays reachable: there is no sandbox).
    with Sandbox(scratch=scratch, limits=limits, stub_packages=inert_stubs(["scipy"]),
                 unsafe_no_sandbox=True) as sandbox:
        process = sandbox.start([sys.executable, "-c", "import scipy.signal; scipy.signal.convolve2d(1, 1)"])
        assert process.wait(timeout=30) == 1
        assert b"RuntimeError: scipy is not available while this problem set is graded" in process.stderr


def test_unprivileged_caller_gets_the_same_sandbox(bwrap, tmp_path):
    """As root, run a script that uses Sandbox as user nobody (no root rights at all)."""
    if os.geteuid() != 0:
        pytest.skip("the tests already run unprivileged")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is missing")
    as_nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    # A Python whose installation nobody may read (the sandbox binds it): this one, or the system's.
    readable = ("import os, sys; folders = [sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))]; "
                "sys.exit(not all(os.access(folder, os.R_OK | os.X_OK) for folder in folders))")
    for python in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(python) and subprocess.run([*as_nobody, python, "-c", readable],
                                                     capture_output=True).returncode == 0:
            break
    else:
        pytest.skip("no Python here that user nobody may run")
    # A copy of the sandbox module that nobody may read, with a scratch folder it owns.
    work = Path(tempfile.mkdtemp(prefix="cnn-course-unprivileged-"))
    try:
        os.chmod(work, 0o755)
        grading = Path(sandbox_module.__file__).parent
        shutil.copy(grading / "sandbox.py", work)
        shutil.copy(grading / "_sandbox_exec.py", work)
        shutil.copytree(grading / "stubs", work / "stubs")
        scratch = work / "scratch"
        scratch.mkdir()
        os.chown(scratch, 65534, 65534)
        script = work / "check.py"
        script.write_text(textwrap.dedent(f"""
            import importlib.util, json, os, sys, textwrap
            from pathlib import Path
            spec = importlib.util.spec_from_file_location("sandbox", {str(work / "sandbox.py")!r})
            sandbox = importlib.util.module_from_spec(spec)
            sys.modules["sandbox"] = sandbox
            spec.loader.exec_module(sandbox)
            limits = sandbox.Limits(wall_seconds=20, max_processes=30)
            inside = textwrap.dedent('''
                import json, os, socket, time
                report = {{"uid": os.getuid(), "interfaces": [n for _i, n in socket.if_nameindex()],
                          "course": os.path.exists({str(REPO / "solutions")!r})}}
                os.write(4, json.dumps(report).encode())
                first = os.getpid()
                until = time.monotonic() + 1.0
                while time.monotonic() < until:
                    try:
                        os.fork()
                    except OSError:
                        break
                if os.getpid() == first:
                    time.sleep(max(0.0, until - time.monotonic()))
                    print(sum(1 for e in os.listdir("/proc") if e.isdigit()), flush=True)
                    os._exit(0)
                time.sleep(60)
            ''')
            with sandbox.Sandbox(scratch=Path({str(scratch)!r}), limits=limits) as box:
                process = box.start([sys.executable, "-c", inside])
                report = json.loads(process.channel_out.read1(4096))
                process.wait(timeout=30)
                report.update(status=sandbox.sandbox_status()[1], reason=process.killed_reason,
                              processes=int(process.stdout), caller=os.getuid())
            spread = textwrap.dedent('''
                import os, time
                for _ in range(3):
                    if os.fork() == 0:
                        break
                block = b"x" * (200 * 1024**2)
                time.sleep(60)
            ''')
            limits = sandbox.Limits(wall_seconds=20, memory_bytes=512 * 1024**2)
            with sandbox.Sandbox(scratch=Path({str(scratch)!r}), limits=limits) as box:
                process = box.start([sys.executable, "-c", spread])
                process.wait(timeout=30)
                report["memory"] = process.killed_reason
            print(json.dumps(report))
        """))
        result = subprocess.run([*as_nobody, python, str(script)], capture_output=True, text=True,
                                timeout=60, cwd=work)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert report["caller"] == 65534 and "unprivileged user namespaces" in report["status"]
    assert report["uid"] != 0 and report["interfaces"] == ["lo"] and report["course"] is False
    assert report["reason"] is None and 15 <= report["processes"] <= 30 + 1
    assert report["memory"] == "memory"


# --- plain errors at the boundary -----------------------------------------------------------


def test_bad_arguments_are_explained(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        Sandbox(scratch=tmp_path / "missing", limits=FAST, unsafe_no_sandbox=True)
    with pytest.raises(ValueError, match="cannot mount over '/proc'"):
        Sandbox(scratch=tmp_path, limits=FAST, binds=[(tmp_path, "/proc")], unsafe_no_sandbox=True)
    with pytest.raises(ValueError, match="not a package folder"):
        Sandbox(scratch=tmp_path, limits=FAST, stub_packages={"scipy": tmp_path}, unsafe_no_sandbox=True)
    with pytest.raises(ValueError, match="Limits.memory_bytes must be a positive number"):
        Limits(memory_bytes=0)
    if os.geteuid() == 0 and sandbox_status()[0]:  # root's sandboxes run as another user
        private = tmp_path / "private"
        private.mkdir(mode=0o700)
        with pytest.raises(ValueError, match="not readable by other users"):
            Sandbox(scratch=tmp_path, limits=FAST, read_only=[private])
    with pytest.raises(TypeError, match="argv must be a non-empty list"):
        with Sandbox(scratch=tmp_path, limits=FAST, unsafe_no_sandbox=True) as sandbox:
            sandbox.start("python -c pass")


def test_missing_bubblewrap_is_explained(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda name: None)
    sandbox_module.sandbox_status.cache_clear()
    try:
        available, why = sandbox_status()
        assert not available and ("bubblewrap" in why or "Linux" in why)
        with pytest.raises(SandboxUnavailable, match="unsafe_no_sandbox=True"):
            Sandbox(scratch=tmp_path, limits=FAST)
    finally:
        sandbox_module.sandbox_status.cache_clear()
