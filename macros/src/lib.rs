//! Procedural macros for `scope_runtime`: `#[main]` and `#[test]`.
//!
//! This crate is an implementation detail of `scope_runtime`: use the
//! re-exports `scope_runtime::main` and `scope_runtime::test` rather than
//! depending on it directly. The generated code refers to the runtime through
//! the absolute path `::scope_runtime`, so `scope_runtime` must be a direct
//! dependency of the crate using the attributes (under that name); inside
//! `scope_runtime` itself (unit tests), `extern crate self as scope_runtime;`
//! in the crate root makes that path resolve.
//!
//! Both attributes turn an `async fn` without arguments into a synchronous
//! function of the same name, visibility, return type and attributes. The
//! original function is kept *unchanged* as a nested `async fn` (same name,
//! same signature, same body), and the synchronous wrapper builds a runtime and
//! blocks on it:
//!
//! ```text
//! #[scope_runtime::main]                      fn main() -> R {
//! async fn main() -> R {          ==>             async fn main() -> R { BODY }
//!     BODY                                        ::scope_runtime::__private::run_main(main())
//! }                                           }
//! ```
//!
//! Keeping the body inside an `async fn` with the user's exact signature (rather
//! than inside an `async` block) means `return`, `?` and coercions to the
//! declared return type type-check exactly as they would in the original
//! function: for example `return Err(Box::new(MyError))` in a function
//! returning `Result<(), Box<dyn Error>>` works, which it does not in an
//! `async move { .. }` block.

use proc_macro::TokenStream;
use proc_macro2::{Delimiter, Group, TokenStream as TokenStream2};
use quote::quote;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Attribute, Signature, Token, Visibility};

#[doc = include_str!("../docs/main.md")]
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Main, args.into(), item.into()).into()
}

#[doc = include_str!("../docs/test.md")]
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Test, args.into(), item.into()).into()
}

/// Which attribute is being expanded.
#[derive(Clone, Copy)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    /// The attribute as users write it, for error messages.
    fn name(self) -> &'static str {
        match self {
            Kind::Main => "#[scope_runtime::main]",
            Kind::Test => "#[scope_runtime::test]",
        }
    }
}

/// Options accepted by the attributes.
#[derive(Default)]
struct Options {
    /// `cores = N`: one runtime per core, the function takes a `CoreContext`.
    /// `main` only.
    cores: Option<syn::Expr>,
    /// Start the runtime with a paused (virtual) clock. `test` only.
    paused: bool,
    /// The paused clock's autojump threshold, in nanoseconds. `test` only.
    autojump: Option<u64>,
}

/// Parses `autojump`'s value: a whole number and a unit, `"10ms"`, `"2 s"`.
fn parse_duration_nanos(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let scale: u64 = match unit.trim_start() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        _ => return None,
    };
    number.checked_mul(scale)
}

/// An `async fn` whose body is kept as an opaque token stream.
///
/// The body is not parsed: the macro never needs to look inside it, this keeps
/// expansion cheap, and it means code that `syn` cannot parse (or that is
/// half-written, while an IDE expands the macro) is passed through to rustc
/// untouched.
struct AsyncFn {
    attrs: Vec<Attribute>,
    vis: Visibility,
    sig: Signature,
    /// The brace-delimited body, including the braces.
    body: Group,
}

impl AsyncFn {
    fn parse(kind: Kind, input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        if !(input.peek(Token![async])
            || input.peek(Token![fn])
            || input.peek(Token![const])
            || input.peek(Token![unsafe])
            || input.peek(Token![extern]))
        {
            return Err(input.error(format!(
                "{} can only be applied to an `async fn`",
                kind.name()
            )));
        }
        let sig: Signature = input.parse()?;
        let body: Group = match input.parse::<Group>() {
            Ok(group) if group.delimiter() == Delimiter::Brace => group,
            Ok(group) => {
                return Err(syn::Error::new(group.span(), "expected a function body"));
            }
            Err(_) => return Err(input.error("expected a function body")),
        };
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the function body"));
        }
        Ok(AsyncFn {
            attrs,
            vis,
            sig,
            body,
        })
    }
}

fn expand(kind: Kind, args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let parser = |input: ParseStream<'_>| AsyncFn::parse(kind, input);
    let mut func = match parser.parse2(item.clone()) {
        Ok(func) => func,
        Err(err) => {
            // Not a function at all: report the error and pass the item through
            // so that it does not also cause unrelated "not found" errors.
            let err = err.to_compile_error();
            return quote! { #err #item };
        }
    };

    // Errors in the options do not prevent generating the wrapper: generate it
    // with defaults so that the only errors reported are ours.
    let mut errors = Vec::new();
    let (options, options_failed) = match parse_options(kind, args) {
        Ok(options) => (options, false),
        Err(err) => {
            errors.push(err);
            (Options::default(), true)
        }
    };
    // A `main` taking one argument next to options that failed to parse was meant
    // for `cores = N`: report the options, not the argument.
    let cores = options.cores.is_some()
        || (options_failed && matches!(kind, Kind::Main) && func.sig.inputs.len() == 1);

    // Errors in the signature make a wrapper impossible: report them (with those of
    // the options) and emit a stub in place of the function.
    if let Err(err) = check_signature(kind, cores, &func.sig) {
        errors.push(err);
        let err = combine(errors).map(|e| e.to_compile_error());
        let stub = stub(&func, cores);
        return quote! { #err #stub };
    }
    if cores && options.cores.is_none() {
        let err = combine(errors).map(|e| e.to_compile_error());
        let stub = stub(&func, true);
        return quote! { #err #stub };
    }

    if let Kind::Test = kind {
        func.attrs.retain(|attr| {
            if is_test_attribute(attr) {
                errors.push(syn::Error::new_spanned(
                    attr,
                    "second test attribute is supplied: #[scope_runtime::test] already \
                     marks the function as a test",
                ));
                false
            } else {
                true
            }
        });
    }

    let mut output = wrapper(kind, &options, &func);
    if let Some(err) = combine(errors) {
        output.extend(err.to_compile_error());
    }
    output
}

/// Rejects signatures the generated wrapper cannot be built for.
fn check_signature(kind: Kind, cores: bool, sig: &Signature) -> syn::Result<()> {
    let name = kind.name();
    let mut errors = Vec::new();
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            sig.fn_token,
            format!(
                "the `async` keyword is missing from the function declaration: \
                 {name} can only be applied to an `async fn`"
            ),
        ));
    }
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            constness,
            format!("{name} functions cannot be `const`"),
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            unsafety,
            format!("{name} functions cannot be `unsafe`"),
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            format!("{name} functions cannot have an `extern` ABI"),
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            format!("{name} functions cannot have generic parameters"),
        ));
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(syn::Error::new_spanned(
            where_clause,
            format!("{name} functions cannot have a `where` clause"),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            format!("{name} functions cannot be variadic"),
        ));
    } else if cores {
        let wanted = "with `cores = N` the function runs on every core and takes that \
                      core's context: write `async fn main(core: scope_runtime::CoreContext)`";
        match sig.inputs.first() {
            None => errors.push(syn::Error::new(sig.paren_token.span.join(), wanted)),
            Some(syn::FnArg::Receiver(receiver)) => {
                errors.push(syn::Error::new_spanned(receiver, wanted));
            }
            Some(_) if sig.inputs.len() > 1 => {
                errors.push(syn::Error::new_spanned(&sig.inputs, wanted));
            }
            Some(_) => {}
        }
    } else if !sig.inputs.is_empty() {
        let hint = match kind {
            Kind::Main => {
                "; to run it on several cores, write #[scope_runtime::main(cores = N)] \
                 and take one `scope_runtime::CoreContext`"
            }
            Kind::Test => "",
        };
        errors.push(syn::Error::new_spanned(
            &sig.inputs,
            format!("{name} functions cannot take arguments{hint}"),
        ));
    }
    match combine(errors) {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

fn parse_options(kind: Kind, args: TokenStream2) -> syn::Result<Options> {
    let mut options = Options::default();
    match kind {
        Kind::Main => {
            let parser = syn::meta::parser(|meta| {
                if meta.path.is_ident("cores") {
                    if options.cores.is_some() {
                        return Err(meta.error("duplicate option `cores`"));
                    }
                    if !meta.input.peek(Token![=]) {
                        return Err(meta.error(
                            "`cores` takes the number of cores: \
                             write #[scope_runtime::main(cores = 2)]",
                        ));
                    }
                    options.cores = Some(meta.value()?.parse::<syn::Expr>()?);
                    Ok(())
                } else {
                    let hint = if meta.path.is_ident("paused") {
                        "; `paused` is only available on #[scope_runtime::test]"
                    } else {
                        ""
                    };
                    Err(syn::Error::new(
                        meta.path.span(),
                        format!(
                            "unknown option `{}`; #[scope_runtime::main] takes only \
                             `cores = N`{hint}",
                            path_text(&meta.path)
                        ),
                    ))
                }
            });
            parser.parse2(args)?;
            Ok(options)
        }
        Kind::Test => {
            let mut seen_paused = false;
            let mut autojump_span = None;
            let parser = syn::meta::parser(|meta| {
                if meta.path.is_ident("paused") {
                    if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
                        return Err(meta.error(
                            "the `paused` option takes no value: \
                             write #[scope_runtime::test(paused)]",
                        ));
                    }
                    if seen_paused {
                        return Err(meta.error("duplicate option `paused`"));
                    }
                    seen_paused = true;
                    options.paused = true;
                    Ok(())
                } else if meta.path.is_ident("autojump") {
                    if autojump_span.is_some() {
                        return Err(meta.error("duplicate option `autojump`"));
                    }
                    let value: syn::LitStr = meta.value()?.parse().map_err(|_| {
                        meta.error(
                            "`autojump` takes a duration in a string: \
                             write #[scope_runtime::test(paused, autojump = \"10ms\")]",
                        )
                    })?;
                    let Some(nanos) = parse_duration_nanos(&value.value()) else {
                        return Err(syn::Error::new_spanned(
                            &value,
                            "invalid duration for `autojump`: write a whole number and a \
                             unit (ns, us, ms or s), e.g. \"10ms\"",
                        ));
                    };
                    autojump_span = Some(meta.path.clone());
                    options.autojump = Some(nanos);
                    Ok(())
                } else {
                    let option = path_text(&meta.path);
                    Err(meta.error(format!(
                        "unknown option `{option}`; expected `paused` or `autojump`"
                    )))
                }
            });
            parser.parse2(args)?;
            if let (Some(path), false) = (&autojump_span, options.paused) {
                return Err(syn::Error::new_spanned(
                    path,
                    "`autojump` only applies to the paused clock: \
                     write #[scope_runtime::test(paused, autojump = \"...\")]",
                ));
            }
            Ok(options)
        }
    }
}

/// An option's path as written: `flavor`, `a::b`.
fn path_text(path: &syn::Path) -> String {
    path.segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// Whether `attr` is some other test attribute: `#[test]`,
/// `#[core::prelude::v1::test]`, `#[tokio::test]`, a second
/// `#[scope_runtime::test]`...
fn is_test_attribute(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "test")
}

/// The expansion proper: a synchronous function that blocks on the original
/// `async fn`, nested inside it under the same name.
fn wrapper(kind: Kind, options: &Options, func: &AsyncFn) -> TokenStream2 {
    let AsyncFn {
        attrs,
        vis,
        sig,
        body,
    } = func;
    let ident = &sig.ident;

    let mut outer_sig = sig.clone();
    outer_sig.asyncness = None;

    let (test_attr, run) = match kind {
        Kind::Main if options.cores.is_some() => {
            let n = options.cores.as_ref();
            outer_sig.inputs = syn::punctuated::Punctuated::new();
            outer_sig.output = syn::parse_quote! {
                -> ::core::result::Result<(), ::scope_runtime::CoresError>
            };
            (
                TokenStream2::new(),
                quote! { ::scope_runtime::__private::run_cores(#n, #ident) },
            )
        }
        Kind::Main => (
            TokenStream2::new(),
            quote! { ::scope_runtime::__private::run_main(#ident()) },
        ),
        Kind::Test => {
            let paused = options.paused;
            let run = match options.autojump {
                Some(nanos) => quote! {
                    ::scope_runtime::__private::run_test_autojump(
                        ::core::time::Duration::from_nanos(#nanos),
                        #ident(),
                    )
                },
                None => quote! { ::scope_runtime::__private::run_test(#paused, #ident()) },
            };
            (quote! { #[::core::prelude::v1::test] }, run)
        }
    };

    // The inner function shadows the outer one inside the outer body, so the
    // call below (and any recursive call in the body) refers to the `async fn`,
    // as it did before expansion.
    quote! {
        #test_attr
        #(#attrs)*
        #vis #outer_sig {
            #[allow(clippy::unused_async, clippy::future_not_send)]
            #sig #body
            #run
        }
    }
}

/// What is emitted in place of a function whose signature was rejected: a
/// synchronous function with the same name and return type, so that the only
/// errors reported are the macro's (no "`main` function not found", no
/// unresolved calls).
fn stub(func: &AsyncFn, cores: bool) -> TokenStream2 {
    let AsyncFn { vis, sig, .. } = func;
    let ident = &sig.ident;
    // The return type may mention the (rejected) generic parameters.
    let output = if cores {
        quote! { -> ::core::result::Result<(), ::scope_runtime::CoresError> }
    } else if sig.generics.params.is_empty() {
        let output = &sig.output;
        quote! { #output }
    } else {
        TokenStream2::new()
    };
    quote! {
        #[allow(dead_code, unreachable_code, clippy::all)]
        #vis fn #ident() #output {
            ::core::unreachable!()
        }
    }
}

fn combine(errors: Vec<syn::Error>) -> Option<syn::Error> {
    errors.into_iter().reduce(|mut all, err| {
        all.combine(err);
        all
    })
}
