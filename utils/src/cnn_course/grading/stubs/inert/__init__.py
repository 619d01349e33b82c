"""An inert stand-in for a package that a problem set does not allow.

The grading sandbox mounts this folder *in place of* a forbidden package's own folder
(``site-packages/scipy/``, ``site-packages/skimage/``...), so the real files, compiled
extensions included, cannot be reached by any path inside the sandbox. The same folder
serves every package: it reads the package's name from ``__name__``.

Imports keep working, so a notebook that merely imports the package still runs::

    import scipy, scipy.signal
    from skimage import data
    from scipy.signal import convolve2d

but *using* anything from it (calling, indexing, iterating, arithmetic, converting to an
array or a number) raises ``RuntimeError("scipy is not available while this problem set
is graded ...")``.

Imported under a dotted name (as ``cnn_course.grading.stubs.inert``, e.g. by a tool that
walks the package) it does nothing.
"""

import importlib.abc
import importlib.machinery
import sys

# Special methods through which a value is *used*; each one raises.
_USES = (
    "__call__", "__getitem__", "__setitem__", "__delitem__", "__iter__", "__next__", "__len__",
    "__contains__", "__reversed__", "__bool__", "__int__", "__float__", "__complex__",
    "__index__", "__round__", "__trunc__", "__floor__", "__ceil__", "__array__", "__fspath__",
    "__enter__", "__exit__", "__await__", "__aiter__", "__lt__", "__le__", "__gt__", "__ge__",
    "__neg__", "__pos__", "__abs__", "__invert__", "__buffer__",
) + tuple(
    f"__{prefix}{operator}__"
    for operator in ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "divmod",
                     "pow", "lshift", "rshift", "and", "xor", "or")
    for prefix in ("", "r", "i")
)


def _unavailable(package, name):
    return RuntimeError(
        f"{package} is not available while this problem set is graded ({name} cannot be used)"
    )


def _is_special(name):
    return name.startswith("__") and name.endswith("__")


class _Inert:
    """Stands for ``name`` in ``package``: attributes give more stand-ins, every use raises."""

    __slots__ = ("_inert_package", "_inert_name")

    def __init__(self, package, name):
        object.__setattr__(self, "_inert_package", package)
        object.__setattr__(self, "_inert_name", name)

    def __getattr__(self, attribute):
        # Special names stay missing, so that protocol probes (numpy's __array_interface__,
        # copy's __deepcopy__...) fail as "not supported" instead of receiving a stand-in.
        if _is_special(attribute):
            raise AttributeError(attribute)
        return _Inert(self._inert_package, f"{self._inert_name}.{attribute}")

    def __setattr__(self, attribute, value):
        raise _unavailable(self._inert_package, self._inert_name)

    def __repr__(self):
        return f"<{self._inert_name}: {self._inert_package} is not available while this problem set is graded>"

    __str__ = __repr__


def _raiser(method):
    def use(self, *args, **kwargs):
        raise _unavailable(self._inert_package, self._inert_name)

    use.__name__ = method
    return use


for _method in _USES:
    setattr(_Inert, _method, _raiser(_method))


def _module_getattr(package, module_name):
    """A module ``__getattr__`` (PEP 562) that answers every ordinary name with a stand-in."""

    def __getattr__(name):
        if _is_special(name):
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        return _Inert(package, f"{module_name}.{name}")

    return __getattr__


class _InertSubmodules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes ``import package.anything`` give an inert module (the real ones are not there)."""

    def __init__(self, package):
        self.package = package

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(self.package + "."):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module):
        module.__path__ = []
        module.__getattr__ = _module_getattr(self.package, module.__name__)


def _activate(package):
    globals()["__getattr__"] = _module_getattr(package, package)
    if not any(isinstance(finder, _InertSubmodules) and finder.package == package
               for finder in sys.meta_path):
        sys.meta_path.insert(0, _InertSubmodules(package))


if "." not in __name__:
    _activate(__name__)
