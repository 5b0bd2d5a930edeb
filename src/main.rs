fn main() {
    if let Err(e) = marquee::cli::main() {
        eprintln!("marquee: {e}");
        std::process::exit(1);
    }
}
