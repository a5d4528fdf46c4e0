"""One error root: every exception class the gateway defines derives from ``GatewayError``, sits in
one family, and says what it means."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from app import errors

PACKAGES = ("app", "tasks", "workers")

FAMILIES = (
    errors.ConfigError,
    errors.WhatsAppError,
    errors.DeliveryError,
    errors.ConversationError,
    errors.EventError,
    errors.StoreError,
    errors.ApiError,
)

def defined_exceptions() -> list[type[BaseException]]:
    """Every exception class defined in a module of the gateway's packages."""
    found = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names = [package_name] + [
            info.name for info in pkgutil.walk_packages(package.__path__, f"{package_name}.")
        ]
        for name in names:
            module = importlib.import_module(name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseException) and cls.__module__ == name:
                    found.append(cls)
    return found


def qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def test_the_gateway_defines_exceptions_to_check():
    assert len(defined_exceptions()) > 25


@pytest.mark.parametrize("cls", defined_exceptions(), ids=qualified)
def test_every_exception_derives_from_the_root_and_has_a_docstring(cls):
    assert cls.__dict__.get("__doc__"), f"{qualified(cls)} has no docstring"
    assert issubclass(cls, errors.GatewayError), f"derive {qualified(cls)} from app.errors"


@pytest.mark.parametrize("cls", defined_exceptions(), ids=qualified)
def test_every_exception_below_the_root_belongs_to_one_family(cls):
    if cls is errors.GatewayError:
        return
    families = [family for family in FAMILIES if issubclass(cls, family)]
    # CredentialError is a family of its own, declared beside the credential store.
    assert len(families) == 1 or cls.__name__ == "CredentialError", qualified(cls)


def test_the_graph_errors_keep_their_decisions_under_the_root():
    from app.whatsapp import errors as graph

    assert issubclass(graph.GraphAPIError, errors.WhatsAppError)
    assert graph.ThrottledError.decision == graph.RETRY_AFTER_DELAY
    assert issubclass(graph.MessageValidationError, ValueError)


def test_a_config_error_names_each_problem():
    assert str(errors.ConfigError(["A is missing", "B must be a number"])) == (
        "invalid configuration:\n  A is missing\n  B must be a number"
    )
    single = errors.ConfigError("FLOWER_BASIC_AUTH must be user:password")
    assert str(single) == "FLOWER_BASIC_AUTH must be user:password"
    assert single.problems == ["FLOWER_BASIC_AUTH must be user:password"]
