"""The exam's variants: drawn from a template spec, each verified, in parallel, the same for any number of processes."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any, Callable

from derive.derived.solution import Solution
from derive.errors import ExamError, SpecError
from derive.exam.model import Exam, base_name
from derive.exam.questions import (
    MAX_FORMULA,
    Degenerate,
    Variant,
    ask_all,
    carried_links,
    distinct,
    formula_pool,
    validate_targets,
    verify,
)
from derive.exam.variants import (
    Ask,
    ExamConfig,
    build_spec,
    config,
    degenerate,
    draw,
    variant_seed,
)
from derive.model.spec import Spec
from derive.parallel import default_jobs, parallel_map

MAX_RETRIES = 200           # re-draws of one variant that came out like an earlier one
EXACT_TRIES = 200           # candidates that pass the cheap float screen and are then solved exactly


# -- one variant: draw, screen, solve; questions.py asks and verifies ------------------------------

def make_variant(template: Spec, cfg: ExamConfig, exam_seed: int, number: int, retry: int = 0) -> Variant:
    """Variant ``number``: draws from its own seed until one meets every constraint (or ExamError)."""
    seed = variant_seed(exam_seed, number, retry)
    rng = random.Random(seed)
    failures: dict[str, int] = {}
    examples: dict[str, str] = {}
    solved = 0
    source = f"{base_name(template.source)} variant {number}"
    for _ in range(cfg.tries):
        raw = draw(template, cfg, rng)
        try:
            spec = build_spec(raw, source)
        except SpecError as exc:              # a value set that the spec refuses (e.g. a target out of range)
            reason = f"a valid spec ({exc})"
        else:
            sol = Solution(spec)
            found = degenerate(spec, lambda l, j: sol.network.names[sol.network.activations[l][j]].plain)
            if found is None and solved < EXACT_TRIES:
                solved += 1
                try:        # online and in mini-batches: about the first update, on its own samples
                    questions = ask_all(sol.first_update, cfg, rng)
                except Degenerate as exc:
                    reason = str(exc)
                else:
                    verify(sol, questions)
                    return Variant(number, seed, raw, questions)
            elif found is None:          # enough exact solves: this draw counts for the commonest failure
                reason = examples[max(failures, key=failures.__getitem__)] if failures else "no degenerate answer"
            else:
                reason = found
        constraint = reason.split(" (")[0]            # the constraint; the parenthesis is this draw's example
        failures[constraint] = failures.get(constraint, 0) + 1
        examples[constraint] = reason
    worst = max(failures, key=failures.__getitem__)
    raise ExamError(f"{base_name(template.source)}: [exam]: no acceptable variant {number} in {cfg.tries} draws "
                    f"(seed {seed}); the constraint that failed most ({failures[worst]} times): {examples[worst]}. "
                    f"Widen the value ranges of [exam] or choose other questions")


# -- the whole exam: variants in parallel, deterministic -------------------------------------------

MAX_VARIANTS = 10_000


def prepare(template: Spec) -> ExamConfig:
    """The [exam] table of a template, checked against its network; default questions fitted to it."""
    cfg = config(template)
    sol = Solution(template).first_update
    validate_targets(sol, cfg)
    cfg = _fitted(template, cfg, sol)
    return _replace(cfg, links=carried_links(sol, cfg)) if cfg.carry_forward else cfg


def _fitted(template: Spec, cfg: ExamConfig, sol: Solution) -> ExamConfig:
    """The questions checked against the template's network, the default ones fitted to it."""
    if len(cfg.activations) == 1 and cfg.asked:
        for ask in cfg.questions:
            if ask.kind == "formula" and not formula_pool(sol, ask.target):
                raise SpecError(template.source, "[exam].questions",
                                f"formula{':' + ask.target if ask.target else ''}: no gradient of this network fits a "
                                f"formula question (typeable without piecewise factors, at most {MAX_FORMULA} "
                                f"characters); ask about another layer or drop it")
    if not cfg.asked and len(cfg.activations) == 1:
        # the default formula question moves to the output layer, or goes, when layer 1's formulas are unwieldy
        asks = []
        for ask in cfg.questions:
            if ask.kind == "formula" and not formula_pool(sol, ask.target):
                last = f"W{template.depth}"
                if not formula_pool(sol, last):
                    continue
                ask = Ask("formula", last)
            asks.append(ask)
        cfg = _replace(cfg, questions=tuple(asks))
    if not cfg.asked:           # a small network has fewer gradients than the default questions ask about
        return _replace(cfg, questions=_own_quantities(sol, cfg))
    own = distinct(sol, cfg, cfg.questions)
    if not all(own):
        ask = cfg.questions[own.index(False)]
        raise SpecError(template.source, "[exam].questions",
                        f"{ask.kind}{':' + ask.target if ask.target else ''}: every quantity it can be about is "
                        f"asked by another question, and a variant never asks one twice (a gradient, its formula "
                        f"and its choice are one quantity); expected another target or fewer questions")
    return cfg


def _own_quantities(sol: Solution, cfg: ExamConfig) -> tuple[Ask, ...]:
    """The default questions, each with a quantity of its own: one whose layer has none left asks about any
    parameter (choice:W1 becomes a choice about a bias), or goes."""
    kept: list[Ask] = []
    for ask in cfg.questions:
        for option in dict.fromkeys((ask, Ask(ask.kind, None))):
            if all(distinct(sol, cfg, kept + [option])):
                kept.append(option)
                break
    return tuple(kept)


def _replace(cfg: ExamConfig, **changes: Any) -> ExamConfig:
    return replace(cfg, **changes)


_STATE: dict[str, Any] = {}


def _init(template: Spec, cfg: ExamConfig, seed: int) -> None:
    _STATE.update(template=template, cfg=cfg, seed=seed)


def _work(number: int) -> Variant | ExamError:
    try:
        return make_variant(_STATE["template"], _STATE["cfg"], _STATE["seed"], number)
    except ExamError as exc:
        return exc


def generate(spec: Spec, variants: int = 1, seed: int = 0, only: int | None = None, jobs: int | None = None,
             progress: Callable[[str, int, int], None] | None = None) -> Exam:
    """``variants`` verified exam variants of a template spec (or only variant ``only``).

    Variant k is drawn from its own seed, a hash of (seed, k); one that comes out like an
    earlier variant is drawn again from the next hash. So the result depends on the arguments
    only, never on the number of processes, and ``only=k`` reproduces variant k of the full run.

    >>> from derive import load
    >>> exam = generate(load("linear-221"), variants=2, seed=1)
    >>> [v.number for v in exam.variants]
    [1, 2]
    """
    if not 1 <= variants <= MAX_VARIANTS:
        raise ExamError(f"--variants: expected a whole number from 1 to {MAX_VARIANTS}; got {variants}")
    if only is not None and not 1 <= only <= variants:
        raise ExamError(f"--only: expected a variant number from 1 to {variants}; got {only}")
    cfg = prepare(spec)
    last = only or variants
    jobs = default_jobs() if jobs is None else jobs
    report = (lambda done, total: progress("drawing", done + 1, total + 1)) if progress else None
    drawn = [make_variant(spec, cfg, seed, 1)]          # in this process first: a hopeless [exam] fails fast
    for result in parallel_map(_work, list(range(2, last + 1)), jobs, _init, (spec, cfg, seed), report):
        if isinstance(result, ExamError):
            raise ExamError(str(result))
        drawn.append(result)
    kept: list[Variant] = []
    seen: set = set()
    for variant in drawn:
        retry = 0
        while (alike := _alike(variant, seen)):
            retry += 1
            if retry > MAX_RETRIES:
                raise ExamError(f"{base_name(spec.source)}: [exam]: no two variants alike: variant {variant.number} came "
                                f"out with {alike} of an earlier one in {MAX_RETRIES} re-draws; the value sets of "
                                f"[exam] allow too few different variants for --variants {variants}")
            variant = make_variant(spec, cfg, seed, variant.number, retry)
        seen.update(_keys(variant))
        kept.append(variant)
    chosen = tuple(v for v in kept if only is None or v.number == only)
    return Exam(spec, cfg, seed, variants, chosen)


def _keys(variant: Variant) -> tuple:
    """What no two variants may share: their numbers, and their numerical answers if they have any
    (a formula-only exam has none, and its variants differ by their numbers)."""
    data, answers = variant.fingerprint()
    return (("the numbers", data),) + ((("the numerical answers", answers),) if answers else ())


def _alike(variant: Variant, seen: set) -> str | None:
    """What the variant shares with an earlier one, or None."""
    return next((key[0] for key in _keys(variant) if key in seen), None)
