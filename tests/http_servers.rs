//! The other smart-HTTP recipes of contrib/, run for real: lighttpd with mod_cgi, and nginx with
//! fcgiwrap (as www-data), each in front of `packserve http-backend` under `/git/`.

mod common;

use common::servers::*;
use common::*;

fn check(start: fn(&Sandbox, &Served) -> WebServer, label: &str, client: Client, protocol: u8) {
    let sb = Sandbox::new(label);
    let served = Served::new(&sb);
    let web = start(&sb, &served);
    git_clone_ls_remote_fetch(&sb, &web.remote(), &served, client, protocol);
    git_push_refused(&sb, &web.remote(), &served, client);
    let want = format!("frontend=http repo=/main.git user=- addr=127.0.0.1 proto={protocol}");
    log_when(&web.log, |log| {
        log.lines().filter(|l| l.contains(&want) && l.contains("outcome=ok")).count() >= 3
    });
}

#[test]
fn lighttpd_git247_v2() {
    check(WebServer::lighttpd, "lighttpd", Client::New, 2)
}

#[test]
fn lighttpd_git239_v0() {
    check(WebServer::lighttpd, "lighttpd", Client::Old, 0)
}

#[test]
fn nginx_fcgiwrap_git247_v2() {
    check(WebServer::nginx_fcgiwrap, "nginx", Client::New, 2)
}

#[test]
fn nginx_fcgiwrap_git239_v0() {
    check(WebServer::nginx_fcgiwrap, "nginx", Client::Old, 0)
}
