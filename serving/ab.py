"""``encore ab report``: the A/B report (:mod:`models.ab`) printed as two tables or JSON."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from models.ab import AbReport, Estimate, ab_report

if TYPE_CHECKING:
    import typer


def parse_day(value: str | None) -> date | None:
    """A ``YYYY-MM-DD`` option value; click names the option in its error."""
    import typer

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"expected a day like 2026-11-23, got {value!r}") from None


def _interval(estimate: Estimate, percent: bool = False, signed: bool = False) -> str:
    """``value ± half-width`` (every interval here is symmetric); ``n/a`` without one."""
    # a difference of rates is in percentage points: no % sign
    scale, digits, unit = (100.0, 1, "" if signed else "%") if percent else (1.0, 2, "")
    sign = "+" if signed else ""
    text = f"{estimate.value * scale:{sign}.{digits}f}{unit}"
    if estimate.low is None or estimate.high is None:
        return f"{text} ± n/a"
    return f"{text} ± {(estimate.high - estimate.low) * scale / 2:.{digits}f}"


def print_report(report: AbReport) -> None:
    """Two rich tables: each variant, then each variant against the baseline."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    span = f"{report.start or 'first day'} to {report.end or 'last day'}"
    variants = Table(
        title=f"A/B variants, {span} (± 95% interval)",
        caption=f"baseline: {report.baseline}; plays exclude likes",
    )
    for header in (
        "variant",
        "listeners",
        "plays",
        "plays per\nlistener",
        "skip rate",
        "completion",
    ):
        variants.add_column(header, justify="left" if header == "variant" else "right")
    for row in report.variants:
        variants.add_row(
            row.variant,
            str(row.listeners),
            str(row.plays),
            _interval(row.plays_per_listener),
            _interval(row.skip_rate, percent=True),
            _interval(row.completion_rate, percent=True),
        )
    console.print(variants)
    if report.differences:
        differences = Table(
            title=f"Difference from {report.baseline} (± 95% interval)",
            caption="an interval that does not reach 0 is a difference at 95%",
        )
        for header in (
            "variant",
            "plays per\nlistener",
            "skip rate\n(% points)",
            "completion\n(% points)",
        ):
            differences.add_column(header, justify="left" if header == "variant" else "right")
        for row in report.differences:
            differences.add_row(
                row.variant,
                _interval(row.plays_per_listener, signed=True),
                _interval(row.skip_rate, percent=True, signed=True),
                _interval(row.completion_rate, percent=True, signed=True),
            )
        console.print(differences)
    if report.shared_listeners:
        console.print(
            f"{report.shared_listeners} listeners played under more than one variant: the "
            "range spans a change of serving.ab_split or ab_salt"
        )


def register_ab_commands(app: typer.Typer) -> None:
    """Add ``ab report`` to ``app`` (the serving part's CLI)."""
    import typer

    ab_app = typer.Typer(help="A/B tests: compare the variants' listening.", no_args_is_help=True)

    @ab_app.command("report")
    def report_command(
        start: date | None = typer.Option(
            None,
            "--from",
            parser=parse_day,
            help="First event day, e.g. 2026-11-23 (default: the first).",
        ),
        end: date | None = typer.Option(
            None, "--to", parser=parse_day, help="Last event day, inclusive (default: the last)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Plays per listener, skip rate and completion per variant, from silver.plays."""
        import json

        from rich.console import Console
        from rich.markup import escape

        from encore.errors import EncoreError
        from encore.settings import get_settings

        try:
            report = ab_report(get_settings(), start, end)
        except EncoreError as error:
            message = f"[red]error:[/red] {escape(str(error))}"
            Console(stderr=True).print(message, soft_wrap=True)
            raise typer.Exit(code=1) from None
        if as_json:
            typer.echo(json.dumps(report.to_dict(), indent=2))
        else:
            print_report(report)

    app.add_typer(ab_app, name="ab")
