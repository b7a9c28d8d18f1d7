"""CPU-test stand-in for torchvision (test environments only, never on the GPU host).

PyPI ships no CPU build of torchvision for torch 2.13 (its wheels link
libtorch_cuda), yet sglang imports torchvision.{io,transforms,...} at module
import time. The server-args / model-config tests never touch image code, so
every torchvision.<anything> module and attribute resolves to an inert
placeholder that raises if it is ever called.
"""
import importlib.abc
import importlib.machinery
import sys
import types

__version__ = "0.0.0+cpu-test-stub"


class _Placeholder:
    def __init__(self, name):
        self._name = name

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"torchvision stub: {self._name} is unavailable in the CPU test venv")

    def __getattr__(self, item):
        if item.startswith("__"):
            raise AttributeError(item)
        return _Placeholder(f"{self._name}.{item}")

    def __mro_entries__(self, bases):
        return (object,)


def _module_getattr(modname):
    def __getattr__(item):
        if item.startswith("__"):
            raise AttributeError(item)
        return _Placeholder(f"{modname}.{item}")

    return __getattr__


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        mod = types.ModuleType(spec.name)
        mod.__path__ = []
        mod.__getattr__ = _module_getattr(spec.name)
        return mod

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, _StubFinder())
__getattr__ = _module_getattr("torchvision")
