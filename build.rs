//! Compiles the C: Redis's `long double` float arithmetic (csrc/ldouble.c), and the Lua 5.1
//! interpreter Redis embeds (csrc/lua: Redis's copy of Lua 5.1.5 with its patches, such as the
//! read-only tables its script sandbox relies on, and the cjson, cmsgpack, bit and struct
//! libraries it ships), with the flags Redis's deps/Makefile gives it.

fn main() {
    println!("cargo:rerun-if-changed=csrc/ldouble.c");
    cc::Build::new()
        .file("csrc/ldouble.c")
        .warnings(true)
        .compile("rudis_ldouble");

    println!("cargo:rerun-if-changed=csrc/lua");
    let mut lua = cc::Build::new();
    let mut files: Vec<_> = std::fs::read_dir("csrc/lua")
        .expect("csrc/lua")
        .map(|e| e.expect("csrc/lua entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    files.sort();
    lua.files(files)
        .include("csrc/lua")
        .define("LUA_ANSI", None)
        .define("ENABLE_CJSON_GLOBAL", None)
        .define("REDIS_STATIC", Some(""))
        .define("LUA_USE_MKSTEMP", None)
        .opt_level(2)
        .warnings(false)
        .compile("rudis_lua");
    println!("cargo:rustc-link-lib=m");
}
