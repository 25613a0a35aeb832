"""``codesign`` command group; bad input becomes one line on stderr and exit status 2."""

from __future__ import annotations

import click

from codesign import __version__
from codesign.allocator import keep_freed_memory
from codesign.errors import CodesignError


class CodesignGroup(click.Group):
    """A click group that turns :class:`CodesignError` into ``error: ...`` and exit status 2."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except CodesignError as exc:
            click.echo(f"codesign: error: {exc}", err=True)
            ctx.exit(2)
        except FileNotFoundError as exc:
            click.echo(f"codesign: error: {exc.filename}: file not found", err=True)
            ctx.exit(2)


@click.group(cls=CodesignGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="codesign")
def cli() -> None:
    """Hardware/algorithm co-design of spiking neural networks on IMC crossbars."""
    keep_freed_memory()  # tensor buffers reused, not faulted in again (codesign.allocator)


def _register() -> None:
    from codesign.cli.export_cmd import export_nir
    from codesign.cli.info_cmd import info
    from codesign.cli.map_cmd import map_cmd
    from codesign.cli.presets_cmd import presets
    from codesign.cli.train_cmd import train

    cli.add_command(train)
    cli.add_command(info)
    cli.add_command(map_cmd, name="map")
    cli.add_command(export_nir)
    cli.add_command(presets)
    from codesign.cli.sweep_cmd import sweep_bits_cmd

    cli.add_command(sweep_bits_cmd, name="sweep-bits")
    from codesign.cli.compare_cmd import compare_cmd

    cli.add_command(compare_cmd, name="compare")


_register()


def main() -> None:
    cli()
