"""The offline runtime: the real program, evaluated in-process against a stand-in backend."""

from coldreach.runtime.echo import EchoBackend
from coldreach.runtime.engine import Backend, ProgramError, evaluate
from coldreach.runtime.model import Deployment, Resource

__all__ = ["Backend", "Deployment", "EchoBackend", "ProgramError", "Resource", "evaluate"]
