//! Local stand-ins for the edge of the world we cannot reach, speaking the same protocols: an
//! SMTP server (RFC 5321: greeting, EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP,
//! QUIT) that keeps what it is sent, and an SMS operator's HTTP API that checks the API key and
//! the request (GSM-7 text, or Unicode flagged as such, at most four SMS long), answers a
//! message id and keeps what it is sent. Both listen on loopback.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::dispatch::{API_KEY_HEADER, SmsAccepted, SmsRequest};

/// Longest command line, and largest message, the SMTP stand-in takes.
const MAX_LINE: usize = 1000;
const MAX_MESSAGE: usize = 1 << 20;

/// One email as the SMTP stand-in received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body, dot-unstuffed, CRLF line ends.
    pub data: String,
}

impl ReceivedMail {
    /// A header's value (the first of that name).
    pub fn header(&self, name: &str) -> Option<&str> {
        let head = self.data.split("\r\n\r\n").next()?;
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn body(&self) -> &str {
        self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An SMTP server on loopback that keeps every message.
#[derive(Debug)]
pub struct SmtpSink {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<ReceivedMail>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> std::io::Result<SmtpSink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let keep = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let keep = keep.clone();
                tokio::spawn(async move {
                    if let Err(e) = smtp_session(stream, &keep).await {
                        tracing::debug!(error = %e, "SMTP stand-in session ended");
                    }
                });
            }
        });
        Ok(SmtpSink {
            addr,
            received,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        lock(&self.received).clone()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one CRLF-terminated line of at most `MAX_LINE` bytes (`None` at the end).
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r
        .take(MAX_LINE as u64 + 2)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if !buf.ends_with(b"\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "line too long",
        ));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

fn path_of(arg: &str) -> Option<String> {
    let (_, rest) = arg.split_once(':')?;
    let rest = rest.trim();
    let inner = rest.strip_prefix('<')?.split('>').next()?;
    Some(inner.to_string())
}

async fn smtp_session(
    stream: tokio::net::TcpStream,
    keep: &Mutex<Vec<ReceivedMail>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 urja-standin ESMTP ready\r\n").await?;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    while let Some(line) = read_line(&mut read).await? {
        let verb = line.get(..4).unwrap_or(&line).to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-urja-standin\r\n250-8BITMIME\r\n250 SIZE 1048576\r\n",
            "HELO" => b"250 urja-standin\r\n",
            "MAIL" => match path_of(&line) {
                Some(p) => {
                    from = Some(p);
                    to.clear();
                    b"250 OK\r\n"
                }
                None => b"501 Syntax: MAIL FROM:<address>\r\n",
            },
            "RCPT" => match (&from, path_of(&line)) {
                (None, _) => b"503 MAIL first\r\n",
                (_, Some(p)) if !p.is_empty() => {
                    to.push(p);
                    b"250 OK\r\n"
                }
                _ => b"501 Syntax: RCPT TO:<address>\r\n",
            },
            "DATA" => {
                if from.is_none() || to.is_empty() {
                    write.write_all(b"503 RCPT first\r\n").await?;
                    continue;
                }
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = String::new();
                loop {
                    let Some(l) = read_line(&mut read).await? else {
                        return Ok(());
                    };
                    if l == "." {
                        break;
                    }
                    let l = l
                        .strip_prefix('.')
                        .filter(|_| l.starts_with(".."))
                        .unwrap_or(&l);
                    data.push_str(l);
                    data.push_str("\r\n");
                    if data.len() > MAX_MESSAGE {
                        write.write_all(b"552 Message too large\r\n").await?;
                        return Ok(());
                    }
                }
                let n = {
                    let mut kept = lock(keep);
                    kept.push(ReceivedMail {
                        from: from.take().unwrap_or_default(),
                        to: std::mem::take(&mut to),
                        data,
                    });
                    kept.len()
                };
                write
                    .write_all(format!("250 OK queued as STANDIN-{n}\r\n").as_bytes())
                    .await?;
                continue;
            }
            "RSET" => {
                from = None;
                to.clear();
                b"250 OK\r\n"
            }
            "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 Command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
    Ok(())
}

/// One SMS as the operator stand-in received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSms {
    pub to: String,
    pub sender_id: String,
    pub template_id: String,
    pub text: String,
    pub unicode: bool,
}

#[derive(Debug, Default)]
struct Operator {
    api_key: String,
    received: Mutex<Vec<ReceivedSms>>,
    /// Answer 503 to this many requests first (an operator having a bad minute).
    fail_next: Mutex<u32>,
}

/// An SMS operator's HTTP API on loopback: `POST /v1/sms`.
#[derive(Debug)]
pub struct SmsOperator {
    addr: SocketAddr,
    state: Arc<Operator>,
    task: tokio::task::JoinHandle<()>,
}

impl SmsOperator {
    pub async fn start(api_key: &str) -> std::io::Result<SmsOperator> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Operator {
            api_key: api_key.to_string(),
            ..Operator::default()
        });
        let app = axum::Router::new()
            .route("/v1/sms", post(accept_sms))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(SmsOperator { addr, state, task })
    }

    /// The URL to configure as the SMS gateway.
    pub fn url(&self) -> String {
        format!("http://{}/v1/sms", self.addr)
    }

    pub fn received(&self) -> Vec<ReceivedSms> {
        lock(&self.state.received).clone()
    }

    /// The next `n` requests are answered 503.
    pub fn fail_next(&self, n: u32) {
        *lock(&self.state.fail_next) = n;
    }
}

impl Drop for SmsOperator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_sms(
    State(op): State<Arc<Operator>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<SmsAccepted>, (StatusCode, String)> {
    if headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()) != Some(op.api_key.as_str()) {
        return Err((StatusCode::UNAUTHORIZED, "bad API key".into()));
    }
    {
        let mut fail = lock(&op.fail_next);
        if *fail > 0 {
            *fail -= 1;
            return Err((StatusCode::SERVICE_UNAVAILABLE, "try again later".into()));
        }
    }
    let req: SmsRequest = serde_json::from_slice(&body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad request: {e}")))?;
    if !store::notify::valid_mobile(&req.to) {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("invalid number {}", req.to),
        ));
    }
    let gsm = crate::sms::encoding(&req.text) == crate::sms::Encoding::Gsm7;
    if !gsm && !req.unicode {
        return Err((
            StatusCode::BAD_REQUEST,
            "text is not GSM-7: send it with unicode set".into(),
        ));
    }
    if req.text.is_empty() || crate::sms::segments(&req.text) > 4 {
        return Err((
            StatusCode::BAD_REQUEST,
            "text must be 1 to 4 SMS long".into(),
        ));
    }
    let n = {
        let mut kept = lock(&op.received);
        kept.push(ReceivedSms {
            to: req.to,
            sender_id: req.sender_id,
            template_id: req.template_id,
            text: req.text,
            unicode: req.unicode,
        });
        kept.len()
    };
    Ok(Json(SmsAccepted {
        message_id: format!("SIM-{n}"),
    }))
}
