//! Compiles the one piece of C: Redis's `long double` float arithmetic (see csrc/ldouble.c).

fn main() {
    println!("cargo:rerun-if-changed=csrc/ldouble.c");
    cc::Build::new()
        .file("csrc/ldouble.c")
        .warnings(true)
        .compile("rudis_ldouble");
}
