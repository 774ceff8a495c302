//! The router as the Lambda runtime serves it.

use axum::Router;
use axum::response::Response;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use tower::ServiceExt;
use tower::util::{MapRequest, MapResponse};

/// `router` for `lambda_http::run`: API Gateway REST APIs put the stage in
/// the path (`/prod/webhook`); it is taken off so routes match on every
/// front door (REST, HTTP API, Function URL) with no extra setting.
/// Hand-written on purpose: lambda_http's own switch
/// (`AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH`) is an environment variable every
/// deployment would have to set, and a deployment without it answers 404.
/// Each answer is followed by the invocation's metrics (one EMF line).
pub fn service(router: Router) -> Service {
    router.map_request(strip_stage as fn(Request) -> Request).map_response(flush_metrics as fn(Response) -> Response)
}

type Service = MapResponse<MapRequest<Router, fn(Request) -> Request>, fn(Response) -> Response>;

fn flush_metrics(response: Response) -> Response {
    crate::metrics::emf::flush();
    response
}

fn strip_stage(mut request: Request) -> Request {
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.stage.clone(),
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|s| s != "$default") else {
        return request;
    };
    let prefix = format!("/{stage}");
    let uri = request.uri();
    let Some(rest) = uri.path().strip_prefix(&prefix).filter(|rest| rest.starts_with('/')) else {
        return request;
    };
    let path_and_query = match uri.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    if let Ok(stripped) = path_and_query.parse() {
        parts.path_and_query = Some(stripped);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}
