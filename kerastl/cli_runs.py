"""`kerastl compare` and `kerastl predict`: commands on finished run folders."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument(
    "run_dirs",
    nargs=-1,
    required=True,
    metavar="RUN_DIR...",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option(
    "-o",
    "--output",
    default="compare.png",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The figure to write: validation loss and accuracy of every run.",
)
@click.option("--force", is_flag=True, help="Overwrite the figure if it exists.")
@click.pass_context
def compare(
    ctx: click.Context, run_dirs: tuple[Path, ...], output: Path, force: bool
) -> None:
    """Compare training runs side by side.

    Prints the settings that differ between the RUN_DIRs, then each shipped
    model's validation (and test) figures, best epoch and training time, and
    draws their validation loss and accuracy over epochs into one PNG.
    """
    from kerastl import compare as comparing  # matplotlib loads only to draw

    folders, output_param = ctx.command.params[0], ctx.command.params[1]
    if len(run_dirs) < 2:
        raise click.BadParameter(
            f"only one run folder ({run_dirs[0]}); give two or more to compare",
            ctx=ctx,
            param=folders,
        )
    if not output.parent.is_dir():
        raise click.BadParameter(
            f"folder {output.parent} does not exist", ctx=ctx, param=output_param
        )
    if output.exists() and not force:
        raise click.BadParameter(
            f"{output} exists; pass --force to overwrite it",
            ctx=ctx,
            param=output_param,
        )
    try:
        names = comparing.column_names(run_dirs)
        runs = [comparing.read_run(folder) for folder in run_dirs]
    except comparing.RunFolderError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=folders) from None
    for line in comparing.table_lines(runs, names):
        click.echo(line)
    if comparing.plot_runs(runs, names, output) is not None:
        click.echo(f"wrote {output}")


@click.command()
@click.argument(
    "run_dir",
    metavar="RUN_DIR",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.argument(
    "paths", nargs=-1, required=True, metavar="PATH...", type=click.Path(path_type=Path)
)
@click.option(
    "--model",
    type=click.Path(path_type=Path),
    help="Another model than the shipped one: best.keras, model.keras, or an "
    "exported artifact (export/saved_model, export/model.tflite, export/model.onnx, "
    "export/model.xml).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the predictions to this CSV file (the as-is script's columns).",
)
@click.option(
    "--top-k",
    type=click.IntRange(1, 1000),
    help="Classes per image.  [default: 1 on screen, 5 in the file]",
)
@click.option(
    "--sheet",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw the images with their predicted class into this PNG.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 4096),
    default=32,
    show_default=True,
    help="Images per batch.",
)
@click.option(
    "--tta",
    is_flag=True,
    help="Test-time augmentation: average each image's prediction with its "
    "mirror image's (the run's metrics.json has its figures with --tta).",
)
@click.option(
    "--explain",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write each image with the Grad-CAM heatmap of its top class into "
    "this folder (PNG; --sheet then shows them). Needs a .keras model.",
)
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@click.pass_context
def predict(
    ctx: click.Context,
    run_dir: Path,
    paths: tuple[Path, ...],
    model: Path | None,
    output: Path | None,
    top_k: int | None,
    sheet: Path | None,
    batch_size: int,
    tta: bool,
    explain: Path | None,
    force: bool,
) -> None:
    """Classify images with a trained run's model.

    RUN_DIR is a finished run's output folder (its metrics.json names the
    shipped model, labels.json the classes); each PATH is an image or a folder
    searched for images. Prints the top class of each image. An image that
    cannot be read is named, skipped, and makes the command exit 1.
    """
    from kerastl import predict as predicting  # TensorFlow loads only to predict

    try:
        request = predicting.check_request(
            run_dir,
            paths,
            model=model,
            output=output,
            sheet=sheet,
            top_k=top_k,
            batch_size=batch_size,
            force=force,
            tta=tta,
            explain=explain,
        )
        ctx.exit(predicting.predict(request))
    except predicting.PredictUsageError as error:
        param = next(param for param in ctx.command.params if param.name == error.param)
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None
