"""Run untrusted code in a sandbox: bubblewrap on Linux (instructor tooling).

A :class:`Sandbox` starts processes that see only what grading needs, read-only: the
Python installation and its virtual environment, ``/usr`` and the system libraries, a
minimal ``/etc`` and ``/dev``, its own ``/proc``, the course package's public source, and
what the caller lists. The only writable places are a private scratch folder (the home,
working and temporary directory, at :data:`SCRATCH_INSIDE`), a small ``/tmp`` and
``/dev/shm``. There is no network (its own network namespace holds only a loopback
interface), no view of other processes (its own PID namespace), and an unprivileged user
id. When the sandbox ends, every process started in it ends too: detached ones included,
because the kernel kills a PID namespace with its first process.

Limits (:class:`Limits`): wall time (the sandbox is killed from outside), memory (an
address-space limit per process and a monitor of all its processes together), number of
processes, size of each written file, output bytes (stdout and stderr are drained by
threads and kept up to a cap; a sandbox that writes more is killed), no core dumps.
Without a cgroup (this module does not create one) the number of files written to the
scratch folder is not limited (each file is).

Each process gets a private channel: a pipe pair it finds on file descriptors 3 (requests
in) and 4 (replies out), announced by ``CNN_COURSE_GRADING_CHANNEL=3,4``.

Where bubblewrap is unavailable (macOS, or a kernel without user namespaces),
:func:`sandbox_status` says why, and ``Sandbox(..., unsafe_no_sandbox=True)`` runs the same
API as a plain subprocess (limits still applied, nothing hidden) for trusted code only.

Example
-------
>>> import tempfile
>>> from pathlib import Path
>>> available, why = sandbox_status()
>>> with tempfile.TemporaryDirectory() as scratch, Sandbox(
...         scratch=Path(scratch), limits=Limits(wall_seconds=60),
...         unsafe_no_sandbox=not available) as sandbox:
...     process = sandbox.start([sys.executable, "-c", "print(6 * 7)"])
...     process.wait(timeout=60), process.output
(0, b'42\\n')
"""

from __future__ import annotations

import ast
import fcntl
import functools
import importlib.metadata
import importlib.util
import json
import os
import re
import select
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO

__all__ = ["Limits", "Sandbox", "SandboxProcess", "SandboxUnavailable", "sandbox_status", "INERT_STUB",
           "inert_stubs", "SCRATCH_INSIDE"]

#: Where the scratch folder appears inside the sandbox (home, working and temporary directory).
SCRATCH_INSIDE = "/home/student"
#: A folder that replaces any package's folder with an inert stand-in (see ``stub_packages``).
INERT_STUB = Path(__file__).resolve().parent / "stubs" / "inert"

_EXEC_HELPER = Path(__file__).resolve().parent / "_sandbox_exec.py"
_EXEC_HELPER_INSIDE = "/opt/cnn-course-sandbox/exec.py"
_CHANNEL_ENV = "CNN_COURSE_GRADING_CHANNEL"
# The id the sandboxed processes have inside their user namespace (unprivileged callers).
_UID_INSIDE = 1000
# Run as root, each sandbox gets a user id of its own from this range (no names, no files), so
# that the process limit counts that sandbox's processes only.
_ROOT_MODE_FIRST_UID = 2_000_000_000
_ROOT_MODE_UID_COUNT = 4096
# How often the watchdog checks wall time and memory.
_WATCH_SECONDS = 0.2
# How long bwrap may take to exit after its namespace was killed before it is killed too.
_BWRAP_GRACE_SECONDS = 2.0
# /etc entries that Python, numpy, TensorFlow and matplotlib read (dynamic linker, certificates,
# fonts, time zone, the Debian Python's sitecustomize). Account names come from a generated file.
_ETC_ENTRIES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "ssl", "ca-certificates",
                "ca-certificates.conf", "pki", "fonts", "alternatives", "localtime", "timezone",
                "nsswitch.conf", "mime.types", "os-release", "matplotlibrc")
# Oldest bubblewrap with every option used here (--disable-userns came in 0.8.0).
_BWRAP_NEEDED = (0, 8)
_SYSTEM_ROOTS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# Paths inside the sandbox that the caller's binds may not replace.
_RESERVED_INSIDE = ("/", "/proc", "/dev", "/tmp", "/etc", "/usr", SCRATCH_INSIDE, "/opt/cnn-course-sandbox")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox.

    Parameters
    ----------
    wall_seconds : float
        Lifetime of the whole sandbox; it is killed from outside when this runs out.
    memory_bytes : int
        Memory of everything inside together. A process that asks for more address space
        gets ``MemoryError`` (``RLIMIT_AS``); processes that together hold more (anonymous
        and shared memory, and ``memfd`` files, checked five times a second) are all
        killed, ``killed_reason`` ``"memory"``. ``/tmp`` and ``/dev/shm`` are limited apart (``max_file_bytes`` each).
    max_processes : int
        Processes and threads running at once (``RLIMIT_NPROC``, counted for this sandbox
        alone: forking beyond it fails).
    max_output_bytes : int
        Bytes of stdout and stderr kept; a sandbox that writes more is killed.
    max_file_bytes : int
        Largest file a process may write; also the size of ``/tmp`` and of ``/dev/shm``.
    """

    wall_seconds: float = 600.0
    memory_bytes: int = 8 * 1024**3
    max_processes: int = 256
    max_output_bytes: int = 1024**2
    max_file_bytes: int = 256 * 1024**2

    def __post_init__(self):
        for name in ("wall_seconds", "memory_bytes", "max_processes", "max_output_bytes", "max_file_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Limits.{name} must be a positive number, got {value!r}")
            if name != "wall_seconds" and not float(value).is_integer():
                raise ValueError(f"Limits.{name} must be a whole number, got {value!r}")

    def rlimits(self) -> dict[str, int]:
        """The resource limits (``setrlimit`` names) applied to every process inside."""
        return {"RLIMIT_AS": int(self.memory_bytes), "RLIMIT_NPROC": int(self.max_processes),
                "RLIMIT_FSIZE": int(self.max_file_bytes), "RLIMIT_CORE": 0}


class SandboxUnavailable(RuntimeError):
    """No sandbox can be made on this machine (the message says why and what to install)."""


# --- Is bubblewrap usable here? ---------------------------------------------------------------


@functools.cache
def sandbox_status() -> tuple[bool, str]:
    """Whether sandboxes work on this machine, and why not (tried once, then remembered).

    Returns
    -------
    (available, description) : tuple of bool and str
        ``description`` names the bubblewrap version and mode, or says in plain words what
        is missing and how to install it.
    """
    if not sys.platform.startswith("linux"):
        return False, (f"sandboxed grading needs Linux with bubblewrap; this is {sys.platform}. "
                       "Grade on a Linux machine, or accept the risk with --unsafe-no-sandbox.")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False, ("bubblewrap (bwrap) is not installed: install the Debian/Ubuntu package "
                       "'bubblewrap' (as root: make system-deps).")
    version = subprocess.run([bwrap, "--version"], capture_output=True, text=True).stdout.strip()
    numbers = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if numbers < _BWRAP_NEEDED:
        return False, (f"bubblewrap {'.'.join(map(str, _BWRAP_NEEDED))} or newer is needed (for --size and "
                       f"--disable-userns); this is {version or 'an unknown version'} (Debian 12 and Ubuntu 24.04 have it).")
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return False, "running as root needs setpriv (Debian package util-linux) to drop to an unprivileged user."
    with tempfile.TemporaryDirectory(prefix="cnn-course-sandbox-check-") as scratch:
        try:
            # The exact mounts of a real sandbox, running a Python that imports nothing.
            sandbox = Sandbox(scratch=Path(scratch), limits=Limits(wall_seconds=60), _checking=True)
            with sandbox:
                process = sandbox.start([sys.executable, "-I", "-S", "-c", "pass"])
                returncode = process.wait(timeout=60)
                output = process.output.decode(errors="replace").strip()
        except (OSError, SandboxUnavailable) as error:
            return False, f"bubblewrap cannot start a sandbox here: {error}"
    if returncode != 0:
        detail = output.splitlines()[-1] if output else f"exit status {returncode}"
        hint = ""
        if "namespace" in detail.lower():
            hint = (" (the kernel may forbid unprivileged user namespaces: see "
                    "sysctl kernel.unprivileged_userns_clone or user.max_user_namespaces)")
        return False, f"bubblewrap cannot start a sandbox here: {detail}{hint}"
    if os.geteuid() == 0:
        mode = "running as root, each sandbox runs as an unprivileged user id of its own"
    else:
        mode = f"unprivileged user namespaces (uid {_UID_INSIDE} inside)"
    return True, f"{version}: {mode}; memory limited per process and in total by a monitor"


# --- Stubbed packages -------------------------------------------------------------------------


def inert_stubs(names: Sequence[str]) -> dict[str, Path]:
    """``stub_packages`` that replace each named package by the inert stand-in.

    >>> sorted(inert_stubs(["scipy", "skimage"]))
    ['scipy', 'skimage']
    """
    return {name: INERT_STUB for name in names}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@functools.lru_cache(maxsize=1)
def _distributions_of_packages() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _python_library_folders() -> list[Path]:
    """Folders where a Python could find packages: this interpreter's path and the system's."""
    folders = [Path(entry) for entry in sys.path if entry and os.path.isabs(entry)]
    folders += [Path(folder) for folder in site.getsitepackages()]
    for pattern in ("/usr/lib/python3*/*-packages", "/usr/local/lib/python3*/*-packages",
                    "/usr/lib/python3/dist-packages"):
        folders += sorted(Path("/").glob(pattern.lstrip("/")))
    unique = []
    for folder in folders:
        if folder.is_dir() and folder not in unique:
            unique.append(folder)
    return unique


def _package_copies(name: str) -> tuple[list[Path], list[Path]]:
    """Every installed copy of top-level package ``name``: (its folders or module files, its ``*.libs`` folders).

    The package that ``import name`` finds comes first; copies elsewhere on the system (an
    older one in ``/usr/lib/python3/dist-packages``) are listed too, so that none stays reachable.
    """
    if not name.isidentifier():
        raise ValueError(f"stub_packages: {name!r} is not a top-level package name (e.g. 'scipy')")
    found: list[Path] = []
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        if spec.submodule_search_locations:
            found += [Path(location) for location in spec.submodule_search_locations]
        elif spec.origin and os.path.isabs(spec.origin):
            found.append(Path(spec.origin))
    library_names = {_normalized(name)} | {_normalized(dist) for dist in _distributions_of_packages().get(name, [])}
    libs: list[Path] = []
    for folder in _python_library_folders():
        candidates = [folder / name, folder / f"{name}.py", *folder.glob(f"{name}.*.so"), *folder.glob(f"{name}.so")]
        found += [candidate for candidate in candidates if candidate.exists()]
        for entry in folder.glob("*.libs"):
            if entry.is_dir() and _normalized(entry.name[: -len(".libs")]) in library_names:
                libs.append(entry)
    unique = lambda paths: list(dict.fromkeys(path.resolve() for path in paths))  # noqa: E731
    return unique(found), unique(libs)


# --- Which host folders the sandbox sees ------------------------------------------------------


def _python_folders() -> list[Path]:
    """The Python installation and virtual environment this process runs in."""
    folders = [sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix,
               os.path.dirname(os.path.realpath(sys.executable))]
    return [Path(folder) for folder in folders]


def _editable_install_folders() -> list[Path]:
    """Source folders that editable installs (``pip install -e``) put on the path via ``.pth`` files.

    The course package is one (``-e ./utils`` puts ``utils/src`` on the path): its public
    source must be visible, read-only, for ``import cnn_course`` to work inside.
    """
    folders = []
    for site_folder in site.getsitepackages():
        for pth in sorted(Path(site_folder).glob("*.pth")):
            for line in pth.read_text(encoding="utf-8", errors="replace").splitlines():
                line = line.strip()
                if not line or line.startswith(("#", "import ", "import\t")):
                    continue
                folder = (Path(site_folder) / line).resolve()
                if folder.is_dir():
                    folders.append(folder)
        for finder in sorted(Path(site_folder).glob("__editable___*_finder.py")):
            # setuptools' strict editable mode: MAPPING = {'package': '/path/to/package', ...}
            match = re.search(r"^MAPPING\s*(?::[^=]*)?=\s*(\{.*?\})\s*$", finder.read_text(encoding="utf-8"),
                              re.MULTILINE | re.DOTALL)
            if match:
                try:
                    mapping = ast.literal_eval(match.group(1))
                except (ValueError, SyntaxError):
                    continue
                folders += [Path(path) for path in mapping.values() if Path(path).exists()]
    return folders


def _is_within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _without_nested(folders: Sequence[Path]) -> list[str]:
    """Absolute folder names, shortest first, leaving out those inside another one."""
    names = sorted({os.path.normpath(os.path.abspath(folder)) for folder in folders}, key=lambda n: (n.count("/"), n))
    kept: list[str] = []
    for name in names:
        if not any(_is_within(name, other) for other in kept):
            kept.append(name)
    return kept


# --- Root mode: one unprivileged user id per sandbox ------------------------------------------


class _UidLease:
    """A user id no other sandbox on this machine holds, kept until :meth:`release`.

    Each id of the range has a lock file in a root-only folder; holding its ``flock`` is
    holding the id, and the kernel releases it if this process dies.
    """

    def __init__(self):
        folder = Path("/run" if os.access("/run", os.W_OK) else tempfile.gettempdir()) / "cnn-course-sandbox-uids"
        folder.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(folder)
        if info.st_uid != 0 or not os.path.isdir(folder) or os.path.islink(folder):
            raise SandboxUnavailable(f"{folder} must be a folder owned by root (it holds the sandboxes' user ids)")
        for uid in range(_ROOT_MODE_FIRST_UID, _ROOT_MODE_FIRST_UID + _ROOT_MODE_UID_COUNT):
            fd = os.open(folder / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.uid = uid
            self._finalizer = weakref.finalize(self, os.close, fd)
            return
        raise SandboxUnavailable(f"all {_ROOT_MODE_UID_COUNT} sandbox user ids are in use")

    def release(self):
        self._finalizer()


# --- The sandbox ------------------------------------------------------------------------------


class Sandbox:
    """Starts processes in one sandbox; a context manager that kills them all on exit.

    Parameters
    ----------
    scratch : pathlib.Path
        An existing folder, private to this sandbox: the only writable folder inside
        (home, working and temporary directory), seen there as :data:`SCRATCH_INSIDE`.
        When the caller is root, it is handed to the sandbox's own user id.
    limits : Limits
        Limits of each process started (and of everything it starts).
    read_only : sequence of pathlib.Path
        Extra host folders or files visible read-only at the same path (e.g. data sets).
        When the caller is root they must be readable by every user.
    binds : sequence of (pathlib.Path, str)
        Host paths made visible read-only at another absolute path inside (e.g. the
        grading runner at ``/opt/cnn-course-grading/runner.py``).
    stub_packages : mapping of str to pathlib.Path
        Top-level package name -> folder mounted in place of every installed copy of that
        package (its ``*.libs`` folders are hidden too), so the real files cannot be
        reached. :data:`INERT_STUB` (see :func:`inert_stubs`) imports but cannot be used.
        A package that is not installed is left alone (importing it fails anyway).
    unsafe_no_sandbox : bool
        Run a plain subprocess with the same API and limits (but no process limit), with
        nothing hidden, no network isolation, and no guarantee that detached processes
        end: only for trusted code, or where no sandbox exists (macOS). Paths inside
        ``binds`` used in ``argv`` are translated to their host paths; stubbed packages
        come first on ``PYTHONPATH``.

    Raises
    ------
    SandboxUnavailable
        No sandbox works here (and ``unsafe_no_sandbox`` is false).
    """

    def __init__(self, *, scratch: Path, limits: Limits, read_only: Sequence[Path] = (),
                 binds: Sequence[tuple[Path, str]] = (),
                 stub_packages: Mapping[str, Path] = MappingProxyType({}),
                 unsafe_no_sandbox: bool = False, _checking: bool = False):
        if not isinstance(limits, Limits):
            raise TypeError(f"limits must be a Limits, got {type(limits).__name__}")
        scratch = Path(scratch)
        if not scratch.is_dir():
            raise ValueError(f"the scratch folder {scratch} does not exist (create it first)")
        self.scratch = scratch.resolve()
        self.limits = limits
        self.unsafe_no_sandbox = bool(unsafe_no_sandbox)
        if not self.unsafe_no_sandbox and not _checking:
            available, why = sandbox_status()
            if not available:
                raise SandboxUnavailable(f"{why} (unsafe_no_sandbox=True runs trusted code without a sandbox)")
        self.read_only = [self._existing(path, "read_only") for path in read_only]
        self.binds = []
        for host, inside in binds:
            inside = os.path.normpath(str(inside))
            if not os.path.isabs(inside) or any(_is_within(inside, reserved) for reserved in _RESERVED_INSIDE
                                                if reserved != "/") or inside == "/":
                raise ValueError(f"binds: cannot mount over {inside!r} inside the sandbox "
                                 "(choose an absolute path such as /opt/<name>)")
            self.binds.append((self._existing(host, "binds"), inside))
        self._is_root = os.geteuid() == 0
        if self._is_root and not self.unsafe_no_sandbox:
            for path in self.read_only + [host for host, _inside in self.binds]:
                needed = 0o005 if path.is_dir() else 0o004  # read (and enter) for "other"
                if os.stat(path).st_mode & needed != needed:
                    raise ValueError(f"{path} is not readable by other users, but sandboxes run as an "
                                     f"unprivileged user: make it readable (chmod o+rX {path})")
        self.stubs: dict[str, tuple[Path, list[Path], list[Path]]] = {}
        for name, stub in dict(stub_packages).items():
            stub = Path(stub)
            if not (stub / "__init__.py").is_file():
                raise ValueError(f"stub_packages[{name!r}]: {stub} is not a package folder (no __init__.py)")
            copies, libs = _package_copies(name)
            if copies or libs:
                self.stubs[name] = (stub.resolve(), copies, libs)
        self._uid_lease: _UidLease | None = None
        self._unsafe_stub_folder: tempfile.TemporaryDirectory | None = None
        self._processes: list[SandboxProcess] = []
        self._lock = threading.Lock()
        self._closed = False

    @staticmethod
    def _existing(path, what) -> Path:
        path = Path(path).expanduser()
        if not path.is_absolute() or not path.exists():
            raise ValueError(f"{what}: {path} does not exist (give an absolute path to an existing file or folder)")
        return path

    # --- public API ---

    def start(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> SandboxProcess:
        """Start ``argv`` inside the sandbox.

        Parameters
        ----------
        argv : sequence of str
            The program and its arguments, as seen inside (``sys.executable`` works).
        env : mapping of str to str, optional
            Extra environment variables. The host's environment is never passed on; the
            process gets ``PATH``, ``HOME``/``TMPDIR`` (the scratch folder), ``USER``,
            ``LANG``, ``CNN_COURSE_GRADING_CHANNEL=3,4`` and these.

        Returns
        -------
        SandboxProcess
        """
        if isinstance(argv, (str, bytes)) or not argv or not all(isinstance(arg, str) for arg in argv):
            raise TypeError(f"argv must be a non-empty list of strings, got {argv!r}")
        if env is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise TypeError("env must map strings to strings")
        with self._lock:
            if self._closed:
                raise RuntimeError("this sandbox has ended; make a new Sandbox")
            if self.unsafe_no_sandbox:
                process = self._start_unsandboxed(list(argv), env or {})
            else:
                process = self._start_sandboxed(list(argv), env or {})
            self._processes.append(process)
            return process

    def close(self) -> None:
        """Kill every process of the sandbox and release what it holds (idempotent)."""
        with self._lock:
            self._closed = True
            processes, self._processes = self._processes, []
        for process in processes:
            process.close()
        if self._uid_lease is not None:
            self._uid_lease.release()
        if self._unsafe_stub_folder is not None:
            self._unsafe_stub_folder.cleanup()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- environment ---

    def _environment(self, home: str, extra: Mapping[str, str]) -> dict[str, str]:
        path = os.pathsep.join(dict.fromkeys([os.path.join(sys.prefix, "bin"), os.path.dirname(sys.executable),
                                              "/usr/local/bin", "/usr/bin", "/bin"]))
        environment = {"PATH": path, "HOME": home, "TMPDIR": home, "USER": "student", "LOGNAME": "student",
                       "LANG": "C.UTF-8", "PYTHONNOUSERSITE": "1"}
        environment.update(extra)
        environment[_CHANNEL_ENV] = "3,4"
        return environment

    # --- plain subprocess (unsafe) ---

    def _start_unsandboxed(self, argv: list[str], env: Mapping[str, str]) -> SandboxProcess:
        translations = sorted(((inside, str(host)) for host, inside in self.binds), key=lambda pair: -len(pair[0]))

        def on_host(value: str) -> str:
            for inside, host in translations:
                if _is_within(value, inside):
                    return host + value[len(inside):]
            return value

        environment = self._environment(str(self.scratch), {key: on_host(value) for key, value in env.items()})
        if self.stubs:
            # Stand-ins first on the path; the real packages stay reachable (no sandbox).
            if self._unsafe_stub_folder is None:
                self._unsafe_stub_folder = tempfile.TemporaryDirectory(prefix="cnn-course-stubs-")
                for name, (stub, _copies, _libs) in self.stubs.items():
                    os.symlink(stub, os.path.join(self._unsafe_stub_folder.name, name))
            environment["PYTHONPATH"] = os.pathsep.join(
                [self._unsafe_stub_folder.name] + ([environment["PYTHONPATH"]] if "PYTHONPATH" in environment else []))
        argv = [on_host(arg) for arg in argv]
        return self._spawn(argv, environment, cwd=str(self.scratch), helper=str(_EXEC_HELPER), bwrap=None,
                           pass_fds=())

    # --- bubblewrap ---

    def _start_sandboxed(self, argv: list[str], env: Mapping[str, str]) -> SandboxProcess:
        if self._is_root:
            if self._uid_lease is None:
                self._uid_lease = _UidLease()
                _hand_over(self.scratch, self._uid_lease.uid)
            uid = gid = self._uid_lease.uid
        else:
            uid = gid = _UID_INSIDE
        account_fds = []
        try:
            for content in (f"student:x:{uid}:{gid}:student:{SCRATCH_INSIDE}:/bin/sh\n", f"student:x:{gid}:\n"):
                read_end, write_end = os.pipe()
                os.write(write_end, content.encode())
                os.close(write_end)
                account_fds.append(read_end)
            bwrap = self._bwrap_arguments(passwd_fd=account_fds[0], group_fd=account_fds[1])
            prefix = []
            if self._is_root:
                prefix = [shutil.which("setpriv") or "setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                          "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
            environment = self._environment(SCRATCH_INSIDE, env)
            return self._spawn(argv, environment, cwd=None, helper=_EXEC_HELPER_INSIDE, bwrap=bwrap,
                               pass_fds=tuple(account_fds), prefix=prefix)
        finally:
            for fd in account_fds:
                os.close(fd)

    def _bwrap_arguments(self, *, passwd_fd: int, group_fd: int) -> list[str]:
        """bwrap's options (without ``--info-fd``): namespaces, then the mounts in order."""
        arguments = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--new-session", "--unshare-ipc",
                     "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
        if not self._is_root:
            arguments += ["--unshare-user", "--uid", str(_UID_INSIDE), "--gid", str(_UID_INSIDE), "--disable-userns"]
        mounted: list[str] = ["/usr"]
        created: set[str] = set()

        def parents(inside: str) -> list[str]:
            # bwrap would create missing parent folders readable by root only: make them 0755.
            options = []
            parent = os.path.dirname(inside)
            chain = []
            while parent not in ("/", "") and not any(_is_within(parent, m) for m in mounted):
                chain.append(parent)
                parent = os.path.dirname(parent)
            for folder in reversed(chain):
                if folder not in created:
                    created.add(folder)
                    options += ["--perms", "0755", "--dir", folder]
            return options

        def ro_bind(host: Path | str, inside: str) -> None:
            arguments.extend(parents(inside) + ["--ro-bind", str(host), inside])
            mounted.append(inside)

        arguments += ["--ro-bind", "/usr", "/usr"]
        for name in _SYSTEM_ROOTS:
            path = Path("/", name)
            if path.is_symlink():
                arguments += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                ro_bind(path, str(path))
        arguments += ["--perms", "0755", "--dir", "/etc"]
        created.add("/etc")
        etc_entries = list(_ETC_ENTRIES) + sorted(p.name for p in Path("/etc").glob("python3*"))
        for name in etc_entries:
            path = Path("/etc", name)
            if path.exists():
                ro_bind(path.resolve(), str(path))
        arguments += ["--ro-bind-data", str(passwd_fd), "/etc/passwd", "--ro-bind-data", str(group_fd), "/etc/group"]
        tmp_size = str(int(self.limits.max_file_bytes))
        arguments += ["--proc", "/proc", "--dev", "/dev",
                      "--perms", "1777", "--size", tmp_size, "--tmpfs", "/tmp",
                      "--perms", "1777", "--size", tmp_size, "--tmpfs", "/dev/shm"]
        # Python, its environment, the course package's source, the caller's folders.
        hidden_source = {str(copy) for _stub, copies, _libs in self.stubs.values() for copy in copies}
        folders = _python_folders() + self.read_only
        folders += [folder for folder in _editable_install_folders() if str(folder) not in hidden_source]
        for folder in _without_nested(folders):
            if not any(_is_within(folder, system) for system in mounted):
                ro_bind(Path(folder).resolve(), folder)
        for host, inside in self.binds:
            ro_bind(host.resolve(), inside)
        # Stubbed packages: the stand-in over every copy the sandbox could otherwise see.
        for stub, copies, libs in self.stubs.values():
            for copy in copies:
                if not any(_is_within(str(copy), m) for m in mounted):
                    continue
                if copy.is_dir():
                    arguments += ["--ro-bind", str(stub), str(copy)]
                elif copy.suffix == ".py":
                    arguments += ["--ro-bind", str(stub / "__init__.py"), str(copy)]
                else:  # a compiled single-file module: an empty file (importing it fails)
                    arguments += ["--ro-bind", "/dev/null", str(copy)]
            for folder in libs:
                if any(_is_within(str(folder), m) for m in mounted):
                    arguments += ["--size", "4096", "--tmpfs", str(folder), "--remount-ro", str(folder)]
        arguments += parents(_EXEC_HELPER_INSIDE) + ["--ro-bind", str(_EXEC_HELPER), _EXEC_HELPER_INSIDE]
        arguments += parents(SCRATCH_INSIDE) + ["--bind", str(self.scratch), SCRATCH_INSIDE, "--chdir", SCRATCH_INSIDE]
        # Nothing else writable: the root folder and /dev (tmpfs that bwrap made) become read-only.
        arguments += ["--remount-ro", "/dev", "--remount-ro", "/"]
        return arguments

    # --- both ---

    def _spawn(self, argv, environment, *, cwd, helper, bwrap, pass_fds, prefix=()) -> SandboxProcess:
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        child_fds = [request_read, reply_write]
        rlimits = self.limits.rlimits()
        if bwrap is None:
            # Outside a user namespace RLIMIT_NPROC counts every process and thread of the user
            # (a desktop session has hundreds): it would stop the program's own threads.
            del rlimits["RLIMIT_NPROC"]
        spec = json.dumps({"rlimits": rlimits, "channel": [request_read, reply_write]})
        command = [*prefix, sys.executable, "-I", "-S", helper, spec, *argv]
        info_read = info_write = None
        if bwrap is not None:
            info_read, info_write = os.pipe()
            command = [*bwrap, "--info-fd", str(info_write), "--", *command]
            child_fds.append(info_write)
        try:
            popen = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=environment, cwd=cwd,
                                     pass_fds=tuple(child_fds) + tuple(pass_fds), start_new_session=True)
        except BaseException:
            for fd in (request_write, reply_read, info_read):
                if fd is not None:
                    os.close(fd)
            raise
        finally:
            for fd in child_fds:
                os.close(fd)
        init_pidfd = None
        if info_read is not None:
            init_pidfd = _open_namespace_init(info_read)
        return SandboxProcess(popen, channel_in=open(request_write, "wb"), channel_out=open(reply_read, "rb"),
                              limits=self.limits, init_pidfd=init_pidfd, sandboxed=bwrap is not None,
                              forbid_user_namespaces=bwrap is not None and self._is_root)


def _hand_over(scratch: Path, uid: int) -> None:
    """Make the scratch folder and everything in it belong to the sandbox's user id (root mode)."""
    os.chown(scratch, uid, uid)
    for folder, subfolders, files in os.walk(scratch):
        for name in subfolders + files:
            os.lchown(os.path.join(folder, name), uid, uid)


def _open_namespace_init(info_read: int) -> int | None:
    """A pidfd for the sandbox's first process (PID 1 of its namespace), from bwrap's ``--info-fd``.

    Killing that process makes the kernel kill everything else in the namespace. ``None`` if
    bwrap failed before starting it (then it exits with an error message on stderr).
    """
    with open(info_read, "rb") as info:
        text = info.read()  # bwrap closes its end after writing
    try:
        details = json.loads(text)
        pid, namespace = int(details["child-pid"]), int(details["pid-namespace"])
    except (ValueError, KeyError, TypeError):
        return None
    try:
        pidfd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        return None
    try:
        # Guard against a reused pid: the process must be in the sandbox's PID namespace.
        if os.stat(f"/proc/{pid}/ns/pid").st_ino != namespace:
            os.close(pidfd)
            return None
    except OSError:
        os.close(pidfd)
        return None
    return pidfd


# --- A running process ------------------------------------------------------------------------


class SandboxProcess:
    """One process started in a sandbox (and everything it starts).

    Attributes
    ----------
    channel_in : BinaryIO
        The coordinator writes requests here (the child reads its fd 3). Buffered: flush
        after each message.
    channel_out : BinaryIO
        The coordinator reads replies here (the child writes its fd 4).
    """

    def __init__(self, popen: subprocess.Popen, *, channel_in: BinaryIO, channel_out: BinaryIO, limits: Limits,
                 init_pidfd: int | None, sandboxed: bool, forbid_user_namespaces: bool = False):
        self.channel_in = channel_in
        self.channel_out = channel_out
        self.limits = limits
        self._popen = popen
        self._init_pidfd = init_pidfd
        self._sandboxed = sandboxed
        self._forbid_user_namespaces = forbid_user_namespaces
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._killed_reason: str | None = None
        self._kill_requested: float | None = None  # time.monotonic() of the first kill
        self._returncode: int | None = None
        self._done = threading.Event()
        self._kept = 0
        self._output_truncated = False
        self._chunks: list[tuple[str, bytes]] = []
        self._readers = [threading.Thread(target=self._drain, args=(stream, name), daemon=True,
                                          name=f"sandbox-{popen.pid}-{name}")
                         for stream, name in ((popen.stdout, "stdout"), (popen.stderr, "stderr"))]
        for reader in self._readers:
            reader.start()
        self._watchdog = threading.Thread(target=self._watch, daemon=True, name=f"sandbox-{popen.pid}-watchdog")
        self._watchdog.start()

    # --- public API ---

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait until every process of the sandbox has ended; its exit status, or ``None`` on timeout.

        The status is negative for a signal (``-11`` a segmentation fault, ``-9`` killed).
        """
        if not self._done.wait(timeout):
            return None
        return self._returncode

    def kill(self) -> None:
        """Kill every process of the sandbox and wait until they are gone (idempotent)."""
        self._terminate("killed")
        self._done.wait()

    def close(self) -> None:
        """Kill what still runs and close the channel."""
        self.kill()
        for stream in (self.channel_in, self.channel_out):
            try:
                stream.close()
            except OSError:
                pass  # the child already closed its end: nothing left to flush

    @property
    def returncode(self) -> int | None:
        """The exit status once it has ended (see :meth:`wait`), else ``None``."""
        return self._returncode if self._done.is_set() else None

    @property
    def output(self) -> bytes:
        """Captured stdout and stderr, interleaved as they arrived, at most ``max_output_bytes``."""
        with self._lock:
            return b"".join(data for _stream, data in self._chunks)

    @property
    def stdout(self) -> bytes:
        """The kept part of stdout alone."""
        with self._lock:
            return b"".join(data for stream, data in self._chunks if stream == "stdout")

    @property
    def stderr(self) -> bytes:
        """The kept part of stderr alone."""
        with self._lock:
            return b"".join(data for stream, data in self._chunks if stream == "stderr")

    @property
    def output_truncated(self) -> bool:
        """True if the process wrote more than ``max_output_bytes`` (the rest was discarded)."""
        return self._output_truncated

    @property
    def killed_reason(self) -> str | None:
        """Why the sandbox was killed: ``"wall time"``, ``"memory"``, ``"output"``, ``"user namespace"``
        (run as root, a process made one) or ``"killed"`` (by :meth:`kill`); ``None`` if it ended by itself."""
        return self._killed_reason

    # --- threads ---

    def _drain(self, stream, name: str) -> None:
        """Read one pipe to its end, keeping at most the output cap (both pipes together)."""
        fd = stream.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            with self._lock:
                room = self.limits.max_output_bytes - self._kept
                if room > 0:
                    self._chunks.append((name, data[:room]))
                    self._kept += min(room, len(data))
                overflow = len(data) > room
                if overflow:
                    self._output_truncated = True
            if overflow:
                self._terminate("output")

    def _watch(self) -> None:
        deadline = self._started + self.limits.wall_seconds
        while True:
            try:
                returncode = self._popen.wait(timeout=_WATCH_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            if self._kill_requested is not None:
                if time.monotonic() > self._kill_requested + _BWRAP_GRACE_SECONDS:
                    self._popen.kill()
            elif time.monotonic() >= deadline:
                self._terminate("wall time")
            elif (_memory_in_use(self._popen.pid) > self.limits.memory_bytes
                  and _memory_in_use(self._popen.pid, exact=True) > self.limits.memory_bytes):
                # The cheap count is an upper bound; the exact one decides.
                self._terminate("memory")
            elif self._forbid_user_namespaces and _in_another_user_namespace(self._popen.pid):
                # Run as root, the sandbox has no user namespace that could forbid new ones; in
                # one of its own the code could mount a tmpfs whose memory nothing counts.
                self._terminate("user namespace")
        if self._sandboxed and returncode > 128:
            returncode = -(returncode - 128)  # bwrap reports "killed by signal N" as 128 + N
        # bwrap exits after the namespace's first process; make sure the namespace is gone too.
        self._kill_processes()
        self._wait_for_namespace(timeout=10)
        # Everything inside has ended, so the pipes reach their end at once. Without a sandbox a
        # detached process may still hold them: its reader then stays behind (a daemon thread).
        readers_deadline = time.monotonic() + 2.0
        for reader, stream in zip(self._readers, (self._popen.stdout, self._popen.stderr), strict=True):
            reader.join(timeout=max(0.0, readers_deadline - time.monotonic()))
            if not reader.is_alive():
                stream.close()
        with self._lock:
            if self._init_pidfd is not None:
                os.close(self._init_pidfd)
                self._init_pidfd = None
        self._returncode = returncode
        self._done.set()

    # --- killing ---

    def _terminate(self, reason: str) -> None:
        with self._lock:
            if self._done.is_set():
                return
            if self._killed_reason is None:
                self._killed_reason = reason
            if self._kill_requested is None:
                self._kill_requested = time.monotonic()
        self._kill_processes()

    def _kill_processes(self) -> None:
        if self._sandboxed:
            with self._lock:  # the watchdog closes the pidfd under this lock
                if self._init_pidfd is not None:
                    # The namespace's first process: the kernel kills all the others with it, and
                    # bwrap (its parent) collects it and exits; the watchdog kills bwrap if it lingers.
                    try:
                        signal.pidfd_send_signal(self._init_pidfd, signal.SIGKILL)
                    except OSError:
                        pass  # already ended
                    return
            self._popen.kill()  # bwrap itself; --die-with-parent takes the namespace with it
        else:
            # No namespace: the process group, then every descendant still found.
            for pid in [self._popen.pid] + _descendants(self._popen.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.killpg(self._popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def _wait_for_namespace(self, timeout: float) -> None:
        """Block until the namespace's first process has ended (the kernel has then killed the rest)."""
        if self._init_pidfd is None:
            return
        poller = select.poll()
        poller.register(self._init_pidfd, select.POLLIN)
        poller.poll(timeout * 1000)

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


# --- Process tree and memory ------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """The children of ``pid``, from its threads' ``children`` files (Linux ``/proc``)."""
    children = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return children  # ended meanwhile, or no /proc (macOS)
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/children", "rb") as listing:
                children += [int(child) for child in listing.read().split()]
        except OSError:
            continue
    return children


def _children_from_scan(pid: int) -> list[int]:
    """The children of ``pid``, from every process's ``stat`` (kernels without ``children`` files)."""
    children = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return children  # no /proc (macOS)
    for entry in entries:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    if int(stat.read().rpartition(b")")[2].split()[1]) == pid:
                        children.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue  # ended meanwhile
    return children


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux ``/proc``; empty elsewhere).

    Reads only the tree's own ``/proc`` entries where the kernel offers ``children`` files,
    so the cost grows with the sandbox, not with the number of processes on the machine.
    """
    own_thread = f"/proc/self/task/{threading.get_native_id()}/children"
    find_children = _children if os.path.exists(own_thread) else _children_from_scan
    found, queue = [], [pid]
    while queue:
        for child in find_children(queue.pop()):
            found.append(child)
            queue.append(child)
    return found


def _in_another_user_namespace(pid: int) -> bool:
    """Whether a process below ``pid`` has entered a user namespace other than this process's."""
    own = os.stat("/proc/self/ns/user").st_ino
    for process in _descendants(pid):
        try:
            if os.stat(f"/proc/{process}/ns/user").st_ino != own:
                return True
        except OSError:
            continue  # ended meanwhile
    return False


def _memory_in_use(pid: int, *, exact: bool = False) -> int:
    """Bytes of memory that ``pid`` and its descendants hold.

    Mapped memory counts anonymous and shared-memory pages (mapped library files, i.e. page
    cache, do not count). By default from ``/proc/PID/status`` (``RssAnon + RssShmem``), which
    is cheap but counts a page shared after ``fork`` once in every process; with ``exact``,
    from proportional set sizes (``Pss_Anon + Pss_Shmem`` of ``smaps_rollup``, about 10 ms
    for a TensorFlow process). Unmapped memory: files made by ``memfd_create`` that a
    process holds open.
    """
    source, keys = ("smaps_rollup", (b"Pss_Anon:", b"Pss_Shmem:")) if exact else ("status", (b"RssAnon:", b"RssShmem:"))
    total = 0
    memory_files = set()
    for process in [pid] + _descendants(pid):
        try:
            with open(f"/proc/{process}/{source}", "rb") as numbers:
                text = numbers.read()
        except OSError:
            continue
        for key in keys:
            start = text.find(key)
            if start >= 0:
                total += int(text[start + len(key):].split(None, 1)[0]) * 1024
        memory_files |= _open_memory_files(process)
    return total + sum(size for _identity, size in memory_files)


def _open_memory_files(pid: int) -> set[tuple[tuple[int, int], int]]:
    """``((device, inode), bytes)`` of each ``memfd_create`` file that ``pid`` holds open."""
    found = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return found
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("/memfd:"):
                info = os.stat(f"/proc/{pid}/fd/{fd}")
                found.add(((info.st_dev, info.st_ino), info.st_blocks * 512))
        except OSError:
            continue  # closed meanwhile
    return found
