//! Helpers over the parse tree (pg_query's protobuf nodes, and their JSON form for
//! walks over any node): qualified names, options, constants, function calls. Pure
//! functions; no rule lives here.

use pg_query::NodeEnum;
use pg_query::protobuf::{self, ConstrType};
use serde_json::Value;

/// Functions whose value differs per row: a default calling one rewrites the table.
const VOLATILE: &[&str] = &[
    "random",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "gen_random_bytes",
];

/// `auth.*` functions that read the request: cheap once, costly per row.
const AUTH_FUNCTIONS: &[&str] = &["uid", "jwt", "role", "email"];

pub(super) fn qname(rv: &protobuf::RangeVar) -> String {
    let schema = if rv.schemaname.is_empty() {
        "public"
    } else {
        &rv.schemaname
    };
    format!("{schema}.{}", rv.relname)
}

/// `schema.name` from name parts (`public` when unqualified).
pub(super) fn qualified(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [name] => format!("public.{name}"),
        [.., schema, name] => format!("{schema}.{name}"),
    }
}

pub(super) fn schema_of(qualified: &str) -> &str {
    qualified.split('.').next().unwrap_or("")
}

pub(super) fn is_storage_table(table: &str) -> bool {
    matches!(table, "storage.objects" | "storage.buckets")
}

pub(super) fn str_list(nodes: &[protobuf::Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match n.node.as_ref() {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

/// The dotted name of a COMMENT's object, when it is a list of names.
pub(super) fn object_name(node: &protobuf::Node) -> String {
    match node.node.as_ref() {
        Some(NodeEnum::List(l)) => str_list(&l.items).join("."),
        Some(NodeEnum::ObjectWithArgs(o)) => str_list(&o.objname).join("."),
        _ => String::new(),
    }
}

pub(super) fn constraint_kind(kind: ConstrType) -> &'static str {
    match kind {
        ConstrType::ConstrForeign => "FOREIGN KEY",
        ConstrType::ConstrCheck => "CHECK",
        ConstrType::ConstrPrimary => "PRIMARY KEY",
        ConstrType::ConstrUnique => "UNIQUE",
        _ => "constraint",
    }
}

/// Whether a VACUUM/REINDEX option list holds `name`.
pub(super) fn has_option(options: &[protobuf::Node], name: &str) -> bool {
    options.iter().any(|o| {
        matches!(o.node.as_ref(), Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case(name))
    })
}

/// A type as overloads tell it apart: its last name (as the grammar spells it:
/// `integer` is `int4`) and `[]` per array dimension, without type modifiers.
fn type_key(t: &protobuf::TypeName) -> String {
    let name = str_list(&t.names).pop().unwrap_or_default();
    format!("{name}{}", "[]".repeat(t.array_bounds.len()))
}

/// The input argument types of a `CREATE FUNCTION` (`OUT` and `TABLE` columns left
/// out), as `int4,text`.
pub(super) fn function_signature(parameters: &[protobuf::Node]) -> String {
    use protobuf::FunctionParameterMode as Mode;
    parameters
        .iter()
        .filter_map(|p| match p.node.as_ref() {
            Some(NodeEnum::FunctionParameter(p))
                if !matches!(
                    Mode::try_from(p.mode),
                    Ok(Mode::FuncParamOut | Mode::FuncParamTable)
                ) =>
            {
                p.arg_type.as_ref().map(type_key)
            }
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The argument types a `DROP`/`GRANT` names a function with, as
/// [`function_signature`]; `None` without an argument list (every overload).
pub(super) fn object_signature(o: &protobuf::ObjectWithArgs) -> Option<String> {
    if o.args_unspecified {
        return None;
    }
    Some(
        o.objargs
            .iter()
            .filter_map(|a| match a.node.as_ref() {
                Some(NodeEnum::TypeName(t)) => Some(type_key(t)),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// `(SECURITY DEFINER?, SET search_path?)` from function options.
pub(super) fn function_options(options: &[protobuf::Node]) -> (Option<bool>, bool) {
    let mut definer = None;
    let mut search_path = false;
    for o in options {
        let Some(NodeEnum::DefElem(d)) = o.node.as_ref() else {
            continue;
        };
        let arg = d.arg.as_deref().and_then(|a| a.node.as_ref());
        match (d.defname.as_str(), arg) {
            ("security", Some(NodeEnum::Boolean(b))) => definer = Some(b.boolval),
            ("set", Some(NodeEnum::VariableSetStmt(v))) if v.name == "search_path" => {
                search_path = true;
            }
            _ => {}
        }
    }
    (definer, search_path)
}

/// `security_invoker = …` in a view's options; `None` when it is not this option.
pub(super) fn security_invoker_option(node: &NodeEnum) -> Option<bool> {
    match node {
        NodeEnum::DefElem(d) if d.defname == "security_invoker" => {
            Some(match d.arg.as_deref().and_then(|a| a.node.as_ref()) {
                None => true,
                Some(arg) => truthy(arg),
            })
        }
        NodeEnum::List(l) => l
            .items
            .iter()
            .filter_map(|i| i.node.as_ref())
            .find_map(security_invoker_option),
        _ => None,
    }
}

fn truthy(node: &NodeEnum) -> bool {
    match node {
        NodeEnum::String(s) => {
            matches!(s.sval.to_lowercase().as_str(), "true" | "on" | "yes" | "1")
        }
        NodeEnum::Integer(i) => i.ival != 0,
        NodeEnum::Boolean(b) => b.boolval,
        NodeEnum::AConst(c) => match &c.val {
            Some(protobuf::a_const::Val::Boolval(b)) => b.boolval,
            Some(protobuf::a_const::Val::Ival(i)) => i.ival != 0,
            Some(protobuf::a_const::Val::Sval(s)) => {
                matches!(s.sval.to_lowercase().as_str(), "true" | "on" | "yes" | "1")
            }
            _ => false,
        },
        _ => false,
    }
}

pub(super) fn is_true_constant(node: &protobuf::Node) -> bool {
    match node.node.as_ref() {
        Some(NodeEnum::AConst(c)) => {
            matches!(&c.val, Some(protobuf::a_const::Val::Boolval(b)) if b.boolval)
        }
        Some(NodeEnum::TypeCast(t)) => t.arg.as_deref().is_some_and(|a| {
            matches!(a.node.as_ref(), Some(NodeEnum::AConst(c))
                if matches!(&c.val, Some(protobuf::a_const::Val::Sval(s)) if s.sval.eq_ignore_ascii_case("true")))
        }),
        _ => false,
    }
}

/// The column of a `col IS NOT NULL` check.
pub(super) fn is_not_null_check(node: &protobuf::Node) -> Option<String> {
    let Some(NodeEnum::NullTest(t)) = node.node.as_ref() else {
        return None;
    };
    if t.nulltesttype != protobuf::NullTestType::IsNotNull as i32 {
        return None;
    }
    match t.arg.as_deref().and_then(|a| a.node.as_ref()) {
        Some(NodeEnum::ColumnRef(c)) => str_list(&c.fields).last().cloned(),
        _ => None,
    }
}

/// The first volatile function an expression calls.
pub(super) fn volatile_call(node: &protobuf::Node) -> Option<String> {
    let json = to_json(node);
    let mut found = None;
    func_calls(&json, &mut |name, _| {
        if found.is_none() && VOLATILE.contains(&name.last().map_or("", String::as_str)) {
            found = name.last().cloned();
        }
    });
    found
}

pub(super) fn to_json(node: &(impl serde::Serialize + ?Sized)) -> Value {
    serde_json::to_value(node).unwrap_or(Value::Null)
}

/// Every `sval` string (identifiers and string constants) under `v`.
pub(super) fn strings(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "sval"
                    && let Value::String(s) = child
                {
                    f(s);
                }
                strings(child, f);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| strings(i, f)),
        _ => {}
    }
}

/// The names of a JSON list of `String` nodes (a qualified name).
pub(super) fn json_names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.pointer("/node/String/sval").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Calls `f(name parts, location)` for every function call under `v`.
pub(super) fn func_calls(v: &Value, f: &mut impl FnMut(&[String], i64)) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "FuncCall" {
                    let names = json_names(&child["funcname"]);
                    f(&names, child["location"].as_i64().unwrap_or(0));
                }
                func_calls(child, f);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| func_calls(i, f)),
        _ => {}
    }
}

/// `auth.uid()` and friends called outside any sub-select.
pub(super) fn bare_auth_calls(v: &Value, in_subselect: bool, out: &mut Vec<(String, i64)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "FuncCall" && !in_subselect {
                    let names = json_names(&child["funcname"]);
                    if let [schema, name] = names.as_slice()
                        && schema == "auth"
                        && AUTH_FUNCTIONS.contains(&name.as_str())
                    {
                        out.push((name.clone(), child["location"].as_i64().unwrap_or(0)));
                    }
                }
                bare_auth_calls(child, in_subselect || k == "SubLink", out);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|i| bare_auth_calls(i, in_subselect, out)),
        _ => {}
    }
}

pub(super) fn reads_auth_users(v: &Value) -> bool {
    match v {
        Value::Object(map) => map.iter().any(|(k, child)| {
            (k == "RangeVar"
                && child["schemaname"].as_str() == Some("auth")
                && child["relname"].as_str() == Some("users"))
                || reads_auth_users(child)
        }),
        Value::Array(items) => items.iter().any(reads_auth_users),
        _ => false,
    }
}
