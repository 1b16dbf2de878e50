"""The local stack resolves template intrinsics itself; what it cannot resolve is an error."""

import pytest

from vidpipe_local.stack.template import Resolver, UnsupportedIntrinsic, load_template, substitute_definition


def resolver():
    r = Resolver(stack_name="s", parameters={"Model": "m1"})
    r.refs["Queue"] = "https://sqs/q"
    r.attrs[("Queue", "Arn")] = "arn:aws:sqs:us-east-1:123456789012:q"
    return r


def test_given_sub_with_pseudo_params_refs_and_attrs_then_all_are_substituted():
    text = resolver().resolve({"Fn::Sub": "${AWS::StackName}-${Model}-${Queue}-${Queue.Arn}-${!Literal}"})
    assert text == "s-m1-https://sqs/q-arn:aws:sqs:us-east-1:123456789012:q-${Literal}"


def test_given_sub_with_a_variable_map_then_the_map_wins():
    assert resolver().resolve({"Fn::Sub": ["${X}/${Model}", {"X": {"Ref": "Queue"}}]}) == "https://sqs/q/m1"


def test_given_an_intrinsic_the_stack_does_not_know_then_it_refuses():
    with pytest.raises(UnsupportedIntrinsic):
        resolver().resolve({"Fn::ImportValue": "x"})


def test_given_a_ref_to_an_unknown_name_then_key_error_names_it():
    with pytest.raises(KeyError, match="Nope"):
        resolver().resolve({"Ref": "Nope"})


def test_given_definition_substitutions_then_every_placeholder_must_have_a_value():
    assert substitute_definition('{"R": "${A}"}', {"A": "arn:1"}) == {"R": "arn:1"}
    with pytest.raises(KeyError, match="B"):
        substitute_definition('{"R": "${B}"}', {"A": "x"})


def test_given_short_form_tags_in_yaml_then_they_load_as_long_form(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("A: !Ref X\nB: !GetAtt Y.Arn\nC: !Sub '${Z}'\n")
    assert load_template(path) == {"A": {"Ref": "X"}, "B": {"Fn::GetAtt": ["Y", "Arn"]}, "C": {"Fn::Sub": "${Z}"}}
