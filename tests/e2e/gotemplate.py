"""A small subset of Go's text/template, enough to render the Helm chart in
packaging/helm/otelite without helm (not in Debian): {{ .Path }},
{{- trimming -}}, {{/* comments */}}, if/else/end, pipelines, and the
functions toYaml, indent, nindent, quote. Anything else raises, so a
template that uses more fails the test instead of rendering wrongly."""
import re

import yaml

TOKEN = re.compile(r"\{\{(-?)(\s*)(.*?)(\s*)(-?)\}\}", re.S)


class TemplateError(Exception):
    pass


def _tokens(text):
    out = []
    pos = 0
    trim_next = False
    for m in TOKEN.finditer(text):
        lit = text[pos:m.start()]
        if trim_next:
            lit = lit.lstrip()
        if m.group(1) == "-":
            lit = lit.rstrip()
        out.append(("text", lit))
        out.append(("action", m.group(3).strip()))
        trim_next = m.group(5) == "-"
        pos = m.end()
    lit = text[pos:]
    out.append(("text", lit.lstrip() if trim_next else lit))
    return out


def _parse(tokens, i=0, stop=("end",)):
    """(nodes, index of the stopping action, its word)."""
    nodes = []
    while i < len(tokens):
        kind, val = tokens[i]
        if kind == "text":
            nodes.append(("text", val))
            i += 1
            continue
        if val.startswith("/*"):
            i += 1
            continue
        word = val.split()[0] if val else ""
        if word in stop:
            return nodes, i, word
        if word == "if":
            body, i, w = _parse(tokens, i + 1, ("else", "end"))
            orelse = []
            if w == "else":
                orelse, i, w = _parse(tokens, i + 1, ("end",))
            nodes.append(("if", val[2:].strip(), body, orelse))
            i += 1
            continue
        if word in ("range", "with", "define", "template", "include", "block"):
            raise TemplateError(f"unsupported action {val!r}")
        nodes.append(("expr", val))
        i += 1
    return nodes, i, None


def _lookup(ctx, path):
    v = ctx
    for part in path.strip(".").split("."):
        if not isinstance(v, dict) or part not in v:
            raise TemplateError(f"no value at {path}")
        v = v[part]
    return v


def _arg(ctx, w):
    if w.startswith("."):
        return _lookup(ctx, w)
    if w.startswith('"') and w.endswith('"'):
        return w[1:-1]
    if re.fullmatch(r"-?\d+", w):
        return int(w)
    raise TemplateError(f"unsupported argument {w!r}")


def _to_yaml(v):
    return yaml.safe_dump(v, default_flow_style=False, sort_keys=True).rstrip("\n")


def _indent(n, s):
    pad = " " * n
    return pad + str(s).replace("\n", "\n" + pad)


FUNCS = {
    "toYaml": _to_yaml,
    "indent": _indent,
    "nindent": lambda n, s: "\n" + _indent(n, s),
    "quote": lambda s: '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"',
}


def _eval(ctx, expr):
    value, have = None, False
    for cmd in expr.split("|"):
        words = cmd.split()
        if not words:
            raise TemplateError(f"empty command in {expr!r}")
        if words[0] in FUNCS:
            args = [_arg(ctx, w) for w in words[1:]] + ([value] if have else [])
            value = FUNCS[words[0]](*args)
        elif len(words) == 1 and not have:
            value = _arg(ctx, words[0])
        else:
            raise TemplateError(f"unsupported command {cmd!r}")
        have = True
    return value


def _truthy(v):
    return v not in (None, False, 0, "", [], {})


def _show(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _run(ctx, nodes, out):
    for n in nodes:
        if n[0] == "text":
            out.append(n[1])
        elif n[0] == "expr":
            out.append(_show(_eval(ctx, n[1])))
        else:
            _run(ctx, n[2] if _truthy(_eval(ctx, n[1])) else n[3], out)


def render(text, ctx):
    nodes, i, w = _parse(_tokens(text))
    if w is not None:
        raise TemplateError(f"unexpected {w}")
    out = []
    _run(ctx, nodes, out)
    return "".join(out)


def _merge(base, over):
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def render_chart(chart_dir, overrides=None, namespace="default", release="otelite"):
    """Every templates/*.yaml of the chart rendered with its values.yaml
    (merged with overrides), as `helm template` would print them: a list of
    (template file name, rendered text)."""
    import pathlib
    d = pathlib.Path(chart_dir)
    chart = yaml.safe_load((d / "Chart.yaml").read_text())
    values = _merge(yaml.safe_load((d / "values.yaml").read_text()), overrides or {})
    ctx = {"Values": values, "Release": {"Name": release, "Namespace": namespace},
           "Chart": {"Name": chart["name"], "Version": chart["version"],
                     "AppVersion": chart.get("appVersion", "")}}
    return [(t.name, render(t.read_text(), ctx)) for t in sorted((d / "templates").glob("*.yaml"))]


HEADER = ("# Rendered from packaging/helm/otelite (templates/{name}) with its default\n"
          "# values; tests/e2e/test_deploy.py keeps the two equal. Namespace\n"
          "# observability: kubectl create namespace observability\n")


def main():
    """Re-renders packaging/kubernetes/ from the chart after a change to it:
    python3 tests/e2e/gotemplate.py"""
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[2]
    out = render_chart(root / "packaging" / "helm" / "otelite",
                       {"sidecarExample": {"enabled": True}}, namespace="observability")
    for name, text in out:
        (root / "packaging" / "kubernetes" / name).write_text(
            HEADER.format(name=name) + text.lstrip("\n"))
        print(f"packaging/kubernetes/{name}")


if __name__ == "__main__":
    main()
