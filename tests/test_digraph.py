"""effplan's graph class: the networkx DiGraph semantics the passes rely on, checked on small graphs drawn
by hand (expected values written out below), and the freeze that protects cached builds."""
import pytest

import effplan
from effplan.graph.digraph import DiGraph, FrozenGraphError


def diamond() -> DiGraph:
    """a -> b, a -> c, b -> d, c -> d, added in that order."""
    g = DiGraph(name="diamond", inputs=["x"])
    g.add_node("a", op="Conv")
    g.add_nodes_from([("b", {"op": "Relu"}), "c"])
    g.add_edges_from([("a", "b", {"tensor": "a"}), ("a", "c")])
    g.add_edge("b", "d", tensor="b")
    g.add_edge("c", "d")
    return g


def test_nodes_keep_insertion_order_and_attributes():
    g = diamond()
    assert list(g) == list(g.nodes) == ["a", "b", "c", "d"]
    assert g.nodes["a"] == {"op": "Conv"} and g.nodes["c"] == {} and g.nodes["d"] == {}
    assert list(g.nodes(data=True)) == [("a", {"op": "Conv"}), ("b", {"op": "Relu"}), ("c", {}), ("d", {})]
    assert len(g) == g.number_of_nodes() == 4 and "d" in g and "e" not in g
    assert g.name == "diamond" and g.graph["inputs"] == ["x"]


def test_edges_degrees_and_neighbours():
    g = diamond()
    assert list(g.edges) == [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    assert g.number_of_edges() == 4 and ("a", "b") in g.edges and ("b", "a") not in g.edges
    assert list(g.edges(data=True))[0] == ("a", "b", {"tensor": "a"}) and g.edges["c", "d"] == {}
    assert list(g.predecessors("d")) == ["b", "c"] and list(g.successors("a")) == ["b", "c"]
    assert [g.in_degree(n) for n in g] == [0, 1, 1, 2]
    assert [g.out_degree(n) for n in g] == [2, 1, 1, 0]


def test_adding_again_updates_instead_of_duplicating():
    g = diamond()
    g.add_node("a", stage="stem")
    g.add_edge("a", "b", tensor="renamed")
    assert g.nodes["a"] == {"op": "Conv", "stage": "stem"}
    assert g.number_of_edges() == 4 and g.edges["a", "b"] == {"tensor": "renamed"}


def test_a_frozen_graph_refuses_additions():
    g = diamond().freeze()
    for add in (lambda: g.add_node("e"), lambda: g.add_edge("d", "e"), lambda: g.add_nodes_from(["e"]),
                lambda: g.add_edges_from([("d", "a")])):
        with pytest.raises(FrozenGraphError, match="frozen"):
            add()
    assert g.number_of_nodes() == 4 and g.number_of_edges() == 4


def test_built_designs_are_frozen_and_their_edges_follow_tensors():
    g = effplan.build(effplan.resolve("efficientnet-b0"))
    assert g.frozen
    with pytest.raises(FrozenGraphError):
        g.add_node("extra")
    # every edge is a tensor one op writes and the other reads; every such pair is an edge
    producer = {t: n for n in g.nodes for t in g.nodes[n]["outputs"]}
    expected = {(producer[t], n) for n in g.nodes for t in g.nodes[n]["inputs"] if t in producer}
    assert set(g.edges) == expected and len(expected) == g.number_of_edges()


def test_adopt_takes_the_node_dicts_and_adds_edges_as_add_edges_from_does():
    attrs = {"a": {"op": "Conv"}, "b": {"op": "Relu"}, "c": {}, "d": {}}
    g = DiGraph(name="diamond").adopt(attrs, [("a", "b", {"tensor": "a"}), ("a", "c"), ("b", "d", {"tensor": "b"}),
                                              ("c", "d")])
    built = diamond()
    assert list(g.nodes(data=True)) == list(built.nodes(data=True))
    assert list(g.edges(data=True)) == list(built.edges(data=True))
    assert g.nodes["a"] is attrs["a"]  # taken as it is: no copy
    with pytest.raises(ValueError, match="not empty"):
        built.adopt({"e": {}}, [])
    with pytest.raises(FrozenGraphError):
        DiGraph().freeze().adopt({}, [])
