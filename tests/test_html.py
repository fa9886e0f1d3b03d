"""Notebook renderings parse as HTML and carry the report's content."""

from html.parser import HTMLParser

import numpy as np
import pytest

import fastgrad as fg


class Collector(HTMLParser):
    """Collect tags, text and the balance of open tags."""

    VOID = {"br", "img"}

    def __init__(self):
        super().__init__()
        self.stack, self.tags, self.text, self.attrs = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.append(dict(attrs))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (self.stack, tag)
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(markup):
    parser = Collector()
    parser.feed(markup)
    parser.close()
    assert parser.stack == []
    return parser


def test_failing_report_renders_table_verdicts_worst_and_hints():
    net = fg.MLP([3, 4, 3], hidden="tanh")
    params = net.init("xavier_normal", seed=0)
    X = np.random.default_rng(0).normal(size=(5, 3))
    y = np.arange(5) % 3
    grads = net.gradients(params, X, y)
    grads["dW2"] = grads["dW2"] * 5
    report = fg.check(net, params, X, y, grads)
    parsed = parse(report._repr_html_())
    text = " ".join(parsed.text)
    assert parsed.tags.count("tr") == 1 + 4 + 1 + 5  # tensors table, worst-entries table
    assert "WRONG" in text and "CORRECT" in text
    assert "a missing 1/m?" in text
    assert "J = -(1/m) sum_b log softmax(z_b)[y_b]" in text
    colours = {a.get("style", "") for a in parsed.attrs if a.get("style", "").startswith("color")}
    assert len(colours) == 2  # WRONG and CORRECT in different colours


def test_inconclusive_report_renders_its_reasons_escaped():
    net = fg.MLP([2, 3, 2])
    params = net.init(seed=0)
    X, y = np.ones((3, 2)), np.array([0, 1, 0])
    report = fg.check(net, params, X, y, loss=5.0)
    markup = report._repr_html_()
    text = " ".join(parse(markup).text)
    assert "your loss 5 is not the described network" in text
    assert "INCONCLUSIVE" in text


def test_diagnosis_renders_tables_and_inline_plot():
    pytest.importorskip("matplotlib")
    result = fg.diagnose([8, 8, 8, 3], init=["he_normal", "lecun_normal"], batch=16)
    parsed = parse(result._repr_html_())
    assert parsed.tags.count("table") == 2
    images = [a for t, a in zip(parsed.tags, parsed.attrs, strict=True) if t == "img"]
    assert len(images) == 1 and images[0]["src"].startswith("data:image/png;base64,")
