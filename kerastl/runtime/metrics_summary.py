"""The figures of `classification_metrics` as lines to print."""


def summary_lines(metrics: dict, weakest: int = 3) -> list[str]:
    """The metrics of `classification_metrics` as lines to print.

    Args:
        metrics: What `classification_metrics` returned.
        weakest: How many classes with the lowest F1 to list.

    Returns:
        Accuracy, top-5 accuracy, macro F1 and examples, then the weakest
        classes (a class without examples is named apart, not ranked), then
        the three most frequent mistakes.
    """
    figures = [("accuracy", f"{metrics['accuracy']:.4f}")]
    if "top5_accuracy" in metrics:
        figures.append(("top-5 accuracy", f"{metrics['top5_accuracy']:.4f}"))
    figures.append(("macro F1", f"{metrics['macro_f1']:.4f}"))
    figures.append(("examples", str(metrics["examples"])))
    width = max(len(name) for name, _ in figures)
    lines = [f"  {name:<{width}}  {value}" for name, value in figures]
    rows = metrics["per_class"]
    ranked = sorted(
        (row for row in rows if row["support"] > 0), key=lambda row: row["f1"]
    )[: max(weakest, 0)]
    if ranked:
        lines.append(f"Weakest {plural(len(ranked), 'class', 'classes')} by F1:")
        name_width = max(len(str(row["class"])) for row in ranked)
        lines += [
            f"  {row['class']!s:<{name_width}}  F1 {row['f1']:.3f}  "
            f"precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
            f"({plural(row['support'], 'example', 'examples')})"
            for row in ranked
        ]
    empty = [str(row["class"]) for row in rows if row["support"] == 0]
    if empty:
        lines.append(f"No examples of: {', '.join(empty)}")
    confused = metrics.get("most_confused", [])[:3]
    if confused:
        lines.append("Most confused (true -> predicted):")
        lines += [
            f"  {true} -> {predicted}  {plural(count, 'time', 'times')}"
            for true, predicted, count in confused
        ]
    return lines


def plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"
