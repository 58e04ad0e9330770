//! Statements built from templates: a template's `?`s bound in turn, and the reads made of
//! one part per scope (per Jetpack product for services, one for addons) joined by
//! `UNION ALL`, as discovery and the window read.

use sqlx::{MySql, QueryBuilder};

/// A value bound into a template.
#[derive(Clone, Copy, Debug)]
pub(super) enum Bind {
    /// A text (the module name).
    Text(&'static str),
    /// An id, a position or a page size.
    Id(u32),
}

/// Pushes `template`, each `?` bound to the next of `binds`.
pub(super) fn push_template(q: &mut QueryBuilder<MySql>, template: &str, binds: &[Bind]) {
    let mut parts = template.split('?');
    if let Some(first) = parts.next() {
        q.push(first);
    }
    for (part, bind) in parts.zip(binds) {
        match *bind {
            Bind::Text(text) => q.push_bind(text),
            Bind::Id(id) => q.push_bind(id),
        };
        q.push(part);
    }
}

/// `prefix`, then `template` once per scope with that scope's binds, joined by `UNION ALL`.
pub(super) fn union_of(
    prefix: &str,
    template: &str,
    scopes: &[u32],
    binds: impl Fn(u32) -> Vec<Bind>,
) -> QueryBuilder<MySql> {
    let mut q = QueryBuilder::<MySql>::new(prefix);
    for (n, scope) in scopes.iter().enumerate() {
        if n > 0 {
            q.push(" UNION ALL ");
        }
        push_template(&mut q, template, &binds(*scope));
    }
    q
}
