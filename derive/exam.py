"""derive exam: randomized variants of a template spec, each verified, drawn in parallel; and its command line."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

from .api import Solution
from .errors import ExamError, SpecError
from .parallel import default_jobs, parallel_map
from .questions import MAX_FORMULA, Degenerate, Variant, ask_all, distinct, formula_pool, validate_targets, verify
from .sheets import DEFAULT_FORMATS, FORMATS, VARIANT_FILE, Options, documents, pdfs, write
from .spec import Spec
from .variants import Ask, ExamConfig, build_spec, config, degenerate, draw, variant_seed

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
    source = f"{_base(template.source)} variant {number}"
    for _ in range(cfg.tries):
        raw = draw(template, cfg, rng)
        try:
            spec = build_spec(raw, source)
        except SpecError as exc:              # a value set that the spec refuses (e.g. a target out of range)
            reason = f"a valid spec ({exc})"
        else:
            sol = Solution(spec)
            reason = degenerate(spec, lambda l, j: sol.network.names[sol.network.activations[l][j]].plain)
            if reason is None and solved < EXACT_TRIES:
                solved += 1
                try:
                    questions = ask_all(sol, cfg, rng)
                except Degenerate as exc:
                    reason = str(exc)
                else:
                    verify(sol, questions)
                    return Variant(number, seed, raw, questions)
            elif reason is None:          # enough exact solves: this draw counts for the commonest failure
                reason = examples[max(failures, key=failures.get)] if failures else "no degenerate answer"
        constraint = reason.split(" (")[0]            # the constraint; the parenthesis is this draw's example
        failures[constraint] = failures.get(constraint, 0) + 1
        examples[constraint] = reason
    worst = max(failures, key=failures.get)
    raise ExamError(f"{_base(template.source)}: [exam]: no acceptable variant {number} in {cfg.tries} draws "
                    f"(seed {seed}); the constraint that failed most ({failures[worst]} times): {examples[worst]}. "
                    f"Widen the value ranges of [exam] or choose other questions")


def _base(source: str) -> str:
    """A spec's name without its directory, so that no absolute path reaches a document."""
    return source.replace("\\", "/").rsplit("/", 1)[-1]


# -- the whole exam: variants in parallel, deterministic -------------------------------------------

MAX_VARIANTS = 10_000


@dataclass(frozen=True)
class Exam:
    """Every generated variant of one template spec, in order."""

    template: Spec
    cfg: ExamConfig
    seed: int
    count: int                   # --variants: how many the exam has (``variants`` may hold only one)
    variants: tuple[Variant, ...]

    @property
    def name(self) -> str:
        """The template's name as a user types it (file name or example name, no directory)."""
        return _base(self.template.source)

    def command(self, variant: int) -> str:
        """The command line that regenerates one variant alone."""
        return f"derive exam {self.name} --variants {self.count} --seed {self.seed} --only {variant}"

    def json(self) -> list[dict[str, Any]]:
        """answers.json: one object per variant with its number, seed, complete spec and questions."""
        return [{"variant": v.number, "seed": v.seed, "exam_seed": self.seed, "spec": v.raw,
                 "questions": [q.json() for q in v.questions]} for v in self.variants]


def prepare(template: Spec) -> ExamConfig:
    """The [exam] table of a template, checked against its network; default questions fitted to it."""
    cfg = config(template)
    sol = Solution(template)
    validate_targets(sol, cfg)
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
    from dataclasses import replace

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
                raise ExamError(f"{_base(spec.source)}: [exam]: no two variants alike: variant {variant.number} came "
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


# -- the command line: derive exam SPEC --variants N --seed S --out DIR ------------------------------

def _formats(text: str) -> tuple[str, ...]:
    import argparse

    chosen = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(FORMATS)}; got {text!r}")
    return chosen


def _positive(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number; got {text!r}")
    return value


class Progress:
    """Progress on standard error for long runs: a rewritten line on a terminal, else every tenth."""

    def __init__(self, stream, minimum: int = 10):
        self.stream, self.minimum, self.last = stream, minimum, -1
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if total < self.minimum:
            return
        if self.tty:
            end = "\n" if done == total else ""
            print(f"\rderive exam: {stage} {done}/{total}", end=end, file=self.stream, flush=True)
        elif done == total or done * 10 // total != self.last:
            self.last = done * 10 // total
            print(f"derive exam: {stage} {done}/{total}", file=self.stream, flush=True)


def cmd_exam(args) -> int:
    import sys

    from .spec import load

    template = load(args.spec)
    progress = Progress(sys.stderr)
    exam = generate(template, args.variants, args.seed, only=args.only, jobs=args.jobs, progress=progress)
    opts = Options(args.format, args.precision, args.template_dir)
    files = documents(exam, opts, jobs=args.jobs, progress=progress)
    if args.only:       # the variant's own files only: the folder of the full run keeps its answers.json
        files = {name: data for name, data in files.items() if VARIANT_FILE.fullmatch(name)}
    if "pdf" in opts.formats:
        files.update(pdfs(files, args.jobs))
    write(files, args.out, replace=not args.only)
    print(f"wrote {len(files)} files for {len(exam.variants)} variant(s) into {args.out}", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    """Add ``derive exam`` to the command line."""
    p = subparsers.add_parser(
        "exam", help="randomized exam variants with answer keys (LaTeX, Markdown, Moodle XML, answers.json)",
        description="Write N verified variants of the exercise SPEC into DIR: per variant its spec (variant-K.toml), "
                    "question sheet and answer key with the worked solution; all sheets in sheets.tex; every variant "
                    "as a Moodle Cloze question in moodle.xml; every answer in answers.json. What varies and which "
                    "questions are asked comes from the spec's [exam] table.")
    p.add_argument("spec", metavar="SPEC", help="a TOML file or a built-in example's name: the template")
    p.add_argument("--variants", type=_positive, default=1, metavar="N", help="how many variants (default 1)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="the exam's seed (default 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write into (made if missing)")
    p.add_argument("--format", type=_formats, default=DEFAULT_FORMATS, metavar="LIST",
                   help=f"comma-separated, of {', '.join(FORMATS)} (default {','.join(DEFAULT_FORMATS)}); "
                        f"answers.json and the variants' specs are always written")
    p.add_argument("--only", type=_positive, metavar="K",
                   help="write only variant K, exactly as the full run of the same arguments makes it")
    p.add_argument("--jobs", type=_positive, metavar="J", help="processes to use (default: every core)")
    p.add_argument("--precision", type=_positive, default=6, metavar="P",
                   help="significant digits in the keys' worked solutions (default 6)")
    p.add_argument("--template-dir", metavar="DIR", help="templates that override the built-in ones")
    p.set_defaults(run=cmd_exam)
