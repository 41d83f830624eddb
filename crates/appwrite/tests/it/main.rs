mod documents;
mod errors;
mod support;
mod teams;
mod users;
