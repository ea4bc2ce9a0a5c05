"""Checking a rendered completion (thinking + answer) against a record's structured instance."""

from __future__ import annotations

from datakit.synth.procedural.common import parse_answer, thinking_errors


def domain_module(name: str):
    from datakit.synth.procedural import DOMAINS

    return DOMAINS.get(name)


def check_completion(domain: str, instance: dict, thinking: str, answer: str) -> list[str]:
    """Every problem with a thinking + answer for a procedural instance ([] = verified correct).

    Combines the shared checks (numbered steps, true arithmetic) with the domain's own checker on the
    answer's PLAN line. Raises KeyError for a domain without a checker.
    """
    mod = domain_module(domain)
    if mod is None:
        raise KeyError(domain)
    errors = thinking_errors(thinking)
    try:
        plan = parse_answer(answer)
    except ValueError as e:
        return errors + [f"answer: {e}"]
    try:
        return errors + mod.check(instance, plan)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        return errors + [f"answer: plan does not fit the instance ({type(e).__name__}: {e})"]


def check_planning_record(rec: dict) -> list[str]:
    """Check a Contract 3 planning record that carries `meta.instance`."""
    return check_completion(rec["domain"], rec["meta"]["instance"], rec["thinking"], rec["answer"])


_NUM = (int, float)
# domain -> top-level key -> (type, {item key: type} for list/dict items, or None)
INSTANCE_SCHEMA = {
    "software_architecture": {"tasks": (list, {"id": str, "name": str, "duration": int, "after": list})},
    "resource_allocation": {"projects": (list, {"id": str, "engineers": int, "budget_k": int, "value": int}),
                            "capacity": (dict, {"engineers": int, "budget_k": int})},
    "logistics": {"places": (list, None), "roads": (list, {"a": str, "b": str, "km": int}), "truck_t": (_NUM, None),
                  "start": (str, None), "goal": (str, None)},
    "multi_agent": {"grid": (list, None), "robots": (list, {"id": str, "start": list, "goal": list})},
    "research_planning": {"tasks": (list, {"id": str, "weeks": int, "risk": str, "after": list}),
                          "contingency": (dict, {"low": int, "medium": int, "high": int})},
}


def instance_problem(domain: str, inst) -> str | None:
    """What keeps `inst` from being a `domain` instance (None when its shape is right)."""
    schema = INSTANCE_SCHEMA.get(domain)
    if schema is None:
        return f"no procedural domain {domain!r}"
    if not isinstance(inst, dict):
        return "instance is not an object"
    for key, (typ, fields) in schema.items():
        value = inst.get(key)
        if not isinstance(value, typ) or isinstance(value, bool):
            return f"instance.{key} is missing or not a {getattr(typ, '__name__', 'number')}"
        items = value if isinstance(value, list) else [value] if fields and isinstance(value, dict) else []
        for n, item in enumerate(items):
            if fields is None:
                break
            if not isinstance(item, dict):
                return f"instance.{key}[{n}] is not an object"
            for f, ft in fields.items():
                if not isinstance(item.get(f), ft) or isinstance(item.get(f), bool):
                    return f"instance.{key}[{n}].{f} is missing or not a {ft.__name__}"
    return None
