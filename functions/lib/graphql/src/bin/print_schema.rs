//! Prints the GraphQL SDL: `cargo run -p gantry-graphql --bin print-schema > schema.graphql`.

fn main() {
    print!("{}", gantry_graphql::sdl());
}
